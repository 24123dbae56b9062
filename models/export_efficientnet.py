#!/usr/bin/python3
"""Exports a torchvision EfficientNet (B0-B7, V2 S/M/L) as a Labeler model folder.

    /usr/bin/python3 models/export_efficientnet.py --arch efficientnet_b3 --weights imagenet --out models/b3

Usually run through `labeler model export`, which reads the last line of stdout.

Writes into --out:
  model.onnx     opset 17, input "input" [batch,3,H,W] float32 (batch dynamic), output "logits" [batch,1000]
  labels.txt     the weights' 1,000 ImageNet class names (weights.meta["categories"]), one a line
  manifest.json  the project's model manifest; crop size, resize size, interpolation, mean and std
                 are read from the weights' own torchvision transform (weights.transforms()),
                 so every variant gets its published evaluation recipe
  export.json    how it was made: versions, weights, parameters, multiply-accumulates per image

--weights imagenet downloads torchvision's published weights (needs the internet once, cached
in torch's hub folder). --weights random keeps the network randomly initialised (fixed seed, no
download) but still takes the transform and class names from the same weights enum: a model that
runs exactly like the real one and labels at random, for tests and speed measurements.

The last line of stdout is one JSON object: {"ok": true, ...} or {"ok": false, "error":
{"code", "message"}}. Exit status: 0 exported; 2 usage; 3 torch/torchvision/onnx missing;
4 the weights could not be downloaded; 1 anything else.
"""

import argparse
import hashlib
import json
import os
import sys
import time

ARCHS = [f"efficientnet_b{i}" for i in range(8)] + [f"efficientnet_v2_{s}" for s in ("s", "m", "l")]
SEED = 20240501
OPSET = 17
TRACE_SIZE = 64
INSTALL_HINT = (
    "install them with: apt-get install -y python3-torch python3-torchvision python3-onnx "
    "(Debian/Ubuntu, used through /usr/bin/python3), or pip install torch torchvision onnx"
)
# torchvision InterpolationMode value -> the manifest's sharp kernel.
KERNELS = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic", "lanczos": "lanczos3"}
EXIT = {"ok": 0, "failed": 1, "usage": 2, "needs-torch": 3, "download": 4}


def finish(code, payload):
    print(json.dumps(payload), flush=True)
    sys.exit(EXIT[code])


def fail(exit_name, code, message):
    finish(exit_name, {"ok": False, "error": {"code": code, "message": message}})


def load_torch():
    missing = []
    modules = {}
    for name in ("torch", "torchvision", "onnx"):
        try:
            modules[name] = __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        fail(
            "needs-torch",
            "model/export-needs-torch",
            f"{sys.executable} cannot import {', '.join(missing)}; {INSTALL_HINT}",
        )
    return modules["torch"], modules["torchvision"], modules["onnx"]


def count_onnx_macs(model):
    """Conv and Gemm/MatMul multiply-accumulates for one image, from the shape-inferred graph."""
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input):
        # The batch axis is symbolic: count one image.
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            weight, out = inits.get(node.input[1]), shapes.get(node.output[0])
            if not weight or not out:
                return None
            n_out = 1
            for d in out:
                n_out *= d
            total += n_out * weight[1] * weight[2] * weight[3]  # Cin/groups x kh x kw
        elif node.op_type in ("Gemm", "MatMul"):
            weight = inits.get(node.input[1])
            if not weight or len(weight) != 2:
                return None
            total += weight[0] * weight[1]
    return total


def single(values, what):
    """torchvision stores sizes as one-element lists ([224]); anything else is not a square recipe."""
    if isinstance(values, int):
        return values
    if len(values) != 1:
        raise ValueError(f"{what} {values} is not one size")
    return int(values[0])


def main():
    parser = argparse.ArgumentParser(description="Export a torchvision EfficientNet as a Labeler model folder")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--weights", default="imagenet", choices=["imagenet", "random"])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.arch not in ARCHS:
        fail("usage", "cli/usage", f"--arch must be one of {', '.join(ARCHS)}, got {args.arch!r}")

    started = time.time()
    torch, torchvision, onnx = load_torch()
    import onnx.shape_inference
    from torchvision.models import get_model_builder, get_model_weights

    weights_enum = get_model_weights(args.arch)
    weights = weights_enum.DEFAULT
    transform = weights.transforms()
    crop = single(transform.crop_size, "crop_size")
    resize = single(transform.resize_size, "resize_size")
    interpolation = transform.interpolation.value
    if interpolation not in KERNELS:
        fail("failed", "model/export-failed", f"{weights} uses interpolation {interpolation}, which has no sharp kernel")
    categories = list(weights.meta["categories"])

    torch.manual_seed(SEED)
    builder = get_model_builder(args.arch)
    if args.weights == "imagenet":
        try:
            model = builder(weights=weights)
        except Exception as error:  # urllib's URLError, HTTPError, socket errors, a bad hash
            fail(
                "download",
                "model/export-download-failed",
                f"could not download {weights} from {weights.url}: {error}",
            )
    else:
        model = builder(weights=None)
    model.eval()

    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "model.onnx")
    tmp_path = onnx_path + ".partial"
    # Tracing runs the network once; at B7's 600 px that forward pass alone takes tens of
    # seconds on two cores. Every layer is size-agnostic (convolutions, global pooling), so
    # trace a small image with height and width left symbolic, then pin them to the crop.
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.zeros(1, 3, TRACE_SIZE, TRACE_SIZE),
            tmp_path,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
            do_constant_folding=True,
        )
    graph_model = onnx.load(tmp_path)
    dims = graph_model.graph.input[0].type.tensor_type.shape.dim
    dims[2].ClearField("dim_param")
    dims[2].dim_value = crop
    dims[3].ClearField("dim_param")
    dims[3].dim_value = crop
    del graph_model.graph.value_info[:]
    graph_model = onnx.shape_inference.infer_shapes(graph_model)
    macs = count_onnx_macs(graph_model)
    onnx.save(graph_model, tmp_path)
    os.replace(tmp_path, onnx_path)
    digest = hashlib.sha256()
    with open(onnx_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    sha256 = digest.hexdigest()

    with open(os.path.join(args.out, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{c}\n" for c in categories))

    weights_name = f"{weights_enum.__name__}.{weights.name}"
    version = f"torchvision-{torchvision.__version__}-{weights.name}"
    if args.weights == "random":
        version = f"torchvision-{torchvision.__version__}-random-seed{SEED}"
    manifest = {
        "schemaVersion": 1,
        "id": args.arch + ("-random" if args.weights == "random" else ""),
        "version": version,
        "description": (
            f"torchvision {args.arch}, "
            + (f"ImageNet-1k weights {weights_name}" if args.weights == "imagenet" else "random weights (labels at random)")
            + f"; preprocessing from {weights_name}.transforms()"
        ),
        "file": "model.onnx",
        "sha256": sha256,
        "labelsFile": "labels.txt",
        "input": {
            "name": "input",
            "layout": "NCHW",
            "width": crop,
            "height": crop,
            "colorOrder": "RGB",
            # PIL's convert("RGB"), as torchvision trains: stored values, embedded ICC profiles not applied.
            "color": "stored",
            "resize": {
                "policy": "shorter-side-then-center-crop",
                "resizeSize": resize,
                "cropFraction": crop / resize,
                "kernel": KERNELS[interpolation],
            },
            "scale": 1 / 255,
            "mean": [float(v) for v in transform.mean],
            "std": [float(v) for v in transform.std],
        },
        "output": {"name": "logits", "kind": "logits"},
    }
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    details = {
        "arch": args.arch,
        "weights": args.weights,
        "weightsEnum": weights_name,
        "transform": repr(transform),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "opset": OPSET,
        "seed": SEED if args.weights == "random" else None,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": macs,
        "flops": 2 * macs if macs else None,
        "bytes": os.path.getsize(onnx_path),
        "seconds": round(time.time() - started, 2),
    }
    with open(os.path.join(args.out, "export.json"), "w", encoding="utf-8") as f:
        json.dump(details, f, indent=2)
        f.write("\n")
    finish("ok", {"ok": True, "dir": os.path.abspath(args.out), "id": manifest["id"], **details})


if __name__ == "__main__":
    main()

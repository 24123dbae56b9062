#!/usr/bin/python3
"""Exports torchvision's EfficientNet-B0 (random weights, fixed seed) for the benchmark.

Run with Debian's interpreter, which has python3-torch 1.13 and python3-torchvision 0.14:

    /usr/bin/python3 bench/export_b0.py bench/.cache/b0

Writes into the output folder:
  model.onnx       opset 17, input "input" [N,3,224,224] float32, output "logits" [N,1000]
  labels.txt       class0 .. class999
  manifest.json    the project's model manifest (ImageNet mean/std, crop fraction 0.875, sha256)
  state_dict.pt    the same weights, for the PyTorch peer (bench/peers/torch_eager.py)
  flops.json       multiply-accumulates per image counted from the module graph
The weights are random: the benchmark measures speed, not accuracy.
"""

import hashlib
import json
import os
import sys
import time

SEED = 20240501
SIZE = 224


def count_macs(model, torch):
    """Counts conv and linear multiply-accumulates for one 224 px image with forward hooks."""
    totals = {"conv": 0, "linear": 0, "elementwise": 0}

    def conv_hook(module, _inputs, output):
        kh, kw = module.kernel_size
        per_output = (module.in_channels // module.groups) * kh * kw
        totals["conv"] += output.numel() * per_output

    def linear_hook(module, _inputs, output):
        totals["linear"] += output.numel() * module.in_features

    def eltwise_hook(_module, _inputs, output):
        # BatchNorm folds into the convs at export; SiLU/Sigmoid/SE scaling are a few ops each.
        totals["elementwise"] += output.numel()

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, (torch.nn.SiLU, torch.nn.Sigmoid)):
            hooks.append(m.register_forward_hook(eltwise_hook))
    with torch.no_grad():
        model(torch.zeros(1, 3, SIZE, SIZE))
    for h in hooks:
        h.remove()
    return totals


def count_onnx_macs(path):
    """Counts Conv and Gemm/MatMul multiply-accumulates per image from the exported ONNX graph."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        return None
    model = shape_inference.infer_shapes(onnx.load(path))
    graph = model.graph
    inits = {i.name: list(i.dims) for i in graph.initializer}
    shapes = {}
    for vi in list(graph.value_info) + list(graph.output) + list(graph.input):
        dims = vi.type.tensor_type.shape.dim
        # The batch axis is symbolic: count one image.
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    total = 0
    for node in graph.node:
        if node.op_type == "Conv":
            w = inits.get(node.input[1])
            out = shapes.get(node.output[0])
            if not w or not out:
                return None
            per_output = w[1] * w[2] * w[3]  # Cin/groups x kh x kw
            n_out = 1
            for d in out:
                n_out *= d
            total += n_out * per_output
        elif node.op_type in ("Gemm", "MatMul"):
            w = inits.get(node.input[1])
            if not w or len(w) != 2:
                return None
            total += w[0] * w[1]
    return total


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".cache", "b0")
    os.makedirs(out_dir, exist_ok=True)
    started = time.time()

    import torch
    import torchvision

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    torch.manual_seed(SEED)
    model = torchvision.models.efficientnet_b0(weights=None)
    model.eval()

    torch.save(model.state_dict(), os.path.join(out_dir, "state_dict.pt"))

    macs = count_macs(model, torch)
    params = sum(p.numel() for p in model.parameters())

    onnx_path = os.path.join(out_dir, "model.onnx")
    tmp_path = onnx_path + ".tmp"
    dummy = torch.randn(1, 3, SIZE, SIZE)
    torch.onnx.export(
        model,
        dummy,
        tmp_path,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=True,
    )
    os.replace(tmp_path, onnx_path)

    with open(onnx_path, "rb") as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()

    with open(os.path.join(out_dir, "labels.txt"), "w") as f:
        f.write("".join(f"class{i}\n" for i in range(1000)))

    manifest = {
        "schemaVersion": 1,
        "id": "bench-efficientnet-b0",
        "version": f"torchvision-{torchvision.__version__}-seed{SEED}",
        "description": "torchvision efficientnet_b0 architecture with random weights (speed benchmark only)",
        "file": "model.onnx",
        "sha256": sha256,
        "labelsFile": "labels.txt",
        "input": {
            "name": "input",
            "layout": "NCHW",
            "width": SIZE,
            "height": SIZE,
            "colorOrder": "RGB",
            "resize": {"policy": "shorter-side-then-center-crop", "cropFraction": 0.875, "kernel": "linear"},
            "scale": 1 / 255,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
        },
        "output": {"name": "logits", "kind": "logits"},
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    hook_macs = macs["conv"] + macs["linear"]
    onnx_macs = count_onnx_macs(onnx_path)
    flops = {
        "source": (
            "Conv + Gemm MACs counted from the exported ONNX graph (1 image, 224 px); forward hooks on the "
            f"torchvision modules give {hook_macs}"
            if onnx_macs
            else "conv + linear MACs from forward hooks on the torchvision modules (1 image, 224 px)"
        ),
        "onnxMacs": onnx_macs,
        "hookMacs": hook_macs,
        "convMacs": macs["conv"],
        "linearMacs": macs["linear"],
        "macs": onnx_macs or hook_macs,
        "flops": 2 * (onnx_macs or hook_macs),
        "activationElements": macs["elementwise"],
        "params": params,
    }
    with open(os.path.join(out_dir, "flops.json"), "w") as f:
        json.dump(flops, f, indent=2)
        f.write("\n")

    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "sha256": sha256,
                "macs": flops["macs"],
                "params": params,
                "seconds": round(time.time() - started, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Train, evaluate and export the bundled Fashion-MNIST EfficientNet.

Run with Debian's interpreter (it has python3-torch and python3-torchvision):
    /usr/bin/python3 models/fashion-efficientnet/train.py [--epochs 15] [--seed 0]

Reads Debian's dataset-fashion-mnist (train split for training, test split only for
the reported accuracy and the committed samples) and writes, next to this file:
model.onnx, manifest.json, labels.txt, export-check.json, metrics.json, samples/ and samples.csv.
"""
import argparse
import gzip
import hashlib
import json
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.models import efficientnet as tv_effnet

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
WIDTH_MULT = 0.25
DEPTH_MULT = 0.25
SIZE = 28
MEAN = 0.2860  # train split, pixel / 255
STD = 0.3530
SAMPLES_PER_CLASS = 20


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def build_model():
    settings, last_channel = tv_effnet._efficientnet_conf(
        "efficientnet_b0", width_mult=WIDTH_MULT, depth_mult=DEPTH_MULT)
    model = tv_effnet.EfficientNet(settings, dropout=0.2, last_channel=last_channel, num_classes=10)
    # A stride-1 stem keeps 28 px inputs at 2x2 before pooling (16x downsampling):
    # the same spatial size stock B0 reaches from a 32 px input.
    model.features[0][0].stride = (1, 1)
    return model


def to_input(images_u8):
    """uint8 N x 28 x 28 -> float32 N x 3 x 28 x 28, exactly what manifest.json describes."""
    x = torch.from_numpy(images_u8.copy()).float().div_(255.0)
    x = (x - MEAN) / STD
    return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def augment(x):
    """Random crop with 2 px zero padding (zero in pixel space) and horizontal flip."""
    n = x.shape[0]
    pad_value = (0.0 - MEAN) / STD
    padded = F.pad(x, (2, 2, 2, 2), value=pad_value)
    ox = torch.randint(0, 5, (n,))
    oy = torch.randint(0, 5, (n,))
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, oy[i]:oy[i] + SIZE, ox[i]:ox[i] + SIZE]
    flip = torch.rand(n) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].contiguous(memory_format=torch.channels_last)
            correct += (model(xb).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=HERE, help="output folder (default: next to this script)")
    parser.add_argument("--train-limit", type=int, default=0, help="smoke test: train on the first N images")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    os.makedirs(args.out, exist_ok=True)
    train_x_u8 = read_idx("train-images-idx3-ubyte.gz")
    train_y = torch.from_numpy(read_idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    test_x_u8 = read_idx("t10k-images-idx3-ubyte.gz")
    test_y = torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    if args.train_limit:
        train_x_u8, train_y = train_x_u8[:args.train_limit], train_y[:args.train_limit]
    train_x = to_input(train_x_u8)
    test_x = to_input(test_x_u8)

    model = build_model().to(memory_format=torch.channels_last)
    batch = 128
    steps_per_epoch = (len(train_x) + batch - 1) // batch
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=3e-3, total_steps=args.epochs * steps_per_epoch)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_x))
        total_loss = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * batch:(step + 1) * batch]
            xb = augment(train_x[idx]).contiguous(memory_format=torch.channels_last)
            loss = criterion(model(xb), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item()
        acc = evaluate(model, test_x, test_y) if epoch == args.epochs - 1 or epoch % 5 == 4 else float("nan")
        print(f"epoch {epoch + 1}/{args.epochs} loss {total_loss / steps_per_epoch:.4f} "
              f"test_acc {acc:.4f} elapsed {time.time() - started:.0f}s", flush=True)
    train_seconds = time.time() - started
    test_acc = evaluate(model, test_x, test_y)

    # Export: BatchNorm folds into the convolutions in eval mode; the batch axis is dynamic.
    model.eval()
    model = model.to(memory_format=torch.contiguous_format)
    onnx_path = os.path.join(args.out, "model.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, SIZE, SIZE), onnx_path,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17, do_constant_folding=True)
    with open(onnx_path, "rb") as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()

    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")

    manifest = {
        "schemaVersion": 1,
        "id": "fashion-efficientnet",
        "version": "1.0.0",
        "description": "EfficientNet (torchvision B0 blocks, width 0.25, depth 0.25, stride-1 stem) "
                       "trained on Fashion-MNIST",
        "file": "model.onnx",
        "sha256": sha256,
        "labelsFile": "labels.txt",
        "input": {
            "name": "input",
            "layout": "NCHW",
            "width": SIZE,
            "height": SIZE,
            "colorOrder": "RGB",
            "resize": {"policy": "shorter-side-then-center-crop", "cropFraction": 1.0, "kernel": "linear"},
            "scale": 1 / 255,
            "mean": [MEAN] * 3,
            "std": [STD] * 3,
        },
        "output": {"name": "logits", "kind": "logits"},
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    # Samples: the first SAMPLES_PER_CLASS test images of each class, as 8-bit grey PNGs.
    samples_dir = os.path.join(args.out, "samples")
    os.makedirs(samples_dir, exist_ok=True)
    rows = []
    per_class = {c: 0 for c in range(10)}
    for i in range(len(test_y)):
        c = int(test_y[i])
        if per_class[c] >= SAMPLES_PER_CLASS:
            continue
        per_class[c] += 1
        name = f"test-{i:05d}.png"
        Image.fromarray(test_x_u8[i], mode="L").save(os.path.join(samples_dir, name), optimize=True)
        rows.append((name, LABELS[c]))
    with open(os.path.join(args.out, "samples.csv"), "w") as f:
        f.write("file,label\n")
        for name, label in rows:
            f.write(f"{name},{label}\n")

    # Reference outputs for the onnxruntime equivalence test: 3 samples and 1 random tensor.
    ref_inputs = torch.cat([to_input(test_x_u8[[0, 1, 2]]), torch.randn(1, 3, SIZE, SIZE)])
    with torch.no_grad():
        ref_logits = model(ref_inputs)
    with open(os.path.join(args.out, "export-check.json"), "w") as f:
        json.dump({"shape": list(ref_inputs.shape),
                   "input": [round(v, 7) for v in ref_inputs.flatten().tolist()],
                   "logits": [round(v, 7) for v in ref_logits.flatten().tolist()]}, f)

    sample_idx = [int(name[5:10]) for name, _ in rows]
    sample_acc = evaluate(model, test_x[sample_idx], test_y[sample_idx])
    metrics = {
        "testAccuracyTop1": test_acc,
        "testImages": len(test_y),
        "sampleAccuracyTop1": sample_acc,
        "sampleImages": len(rows),
        "epochs": args.epochs,
        "seed": args.seed,
        "trainSeconds": round(train_seconds, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "onnxBytes": os.path.getsize(onnx_path),
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
    }
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()

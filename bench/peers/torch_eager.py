#!/usr/bin/python3
"""Peer (b): PyTorch eager with torchvision transforms, the textbook way.

    /usr/bin/python3 bench/peers/torch_eager.py '<json args>'

args: {"stateDict": path, "files": [...], "threads": 2, "seconds": 10, "minImages": 8,
       "variants": [{"name": "batch 1", "batchSize": 1, "channelsLast": false}, ...]}
PIL open -> Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize -> efficientnet_b0, in one
loop (no DataLoader workers, no overlap). Prints one JSON line with a result per variant.
"""

import json
import os
import resource
import sys
import time


def main():
    args = json.loads(sys.argv[1])
    import torch
    import torchvision
    from PIL import Image, ImageOps
    from torchvision import transforms

    torch.set_num_threads(args.get("threads", 2))
    model = torchvision.models.efficientnet_b0(weights=None)
    model.load_state_dict(torch.load(args["stateDict"]))
    model.eval()
    preprocess = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )
    files = args["files"]

    def load(path):
        with Image.open(path) as img:
            return preprocess(ImageOps.exif_transpose(img).convert("RGB"))

    results = []
    for variant in args["variants"]:
        batch_size = variant["batchSize"]
        net = model.to(memory_format=torch.channels_last) if variant.get("channelsLast") else model

        def run_batch(start):
            batch = torch.stack([load(files[(start + i) % len(files)]) for i in range(batch_size)])
            if variant.get("channelsLast"):
                batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                logits = net(batch)
            return torch.topk(torch.softmax(logits, dim=1), 5)

        run_batch(0)  # warm-up, not timed
        images = 0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < args["seconds"] or images < args["minImages"]:
            run_batch(images)
            images += batch_size
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        result = {
            "name": variant["name"],
            "batchSize": batch_size,
            "channelsLast": bool(variant.get("channelsLast")),
            "images": images,
            "seconds": seconds,
            "imagesPerSecond": images / seconds,
            "cpuSecondsPerImage": cpu / images,
        }
        results.append(result)
        # One line per variant as it finishes, so a time-out still leaves the earlier ones.
        print(json.dumps({"variant": result}), flush=True)
        print(f"torch {variant['name']}: {images / seconds:.1f} images/s", file=sys.stderr, flush=True)

    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "threads": torch.get_num_threads(),
                "peakRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "pid": os.getpid(),
                "summary": True,
                "variants": results,
            }
        )
    )


if __name__ == "__main__":
    main()

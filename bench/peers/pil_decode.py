"""libjpeg-turbo's decode as torchvision's reference preprocessing does it, for the decode section.

PIL's Image.open(...).convert("RGB") (Debian's python3-pil, libjpeg-turbo) over the same files
from memory, and the same with draft() at 1/2 scale (libjpeg-turbo's DCT scaling). Prints one
JSON line: CPU-ms per image of each, the median pass (process time).
"""

import io
import json
import statistics
import sys
import time

import PIL
from PIL import Image


def full(data):
    Image.open(io.BytesIO(data)).convert("RGB").load()


def draft(data):
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (im.size[0] // 2, im.size[1] // 2))
    im.convert("RGB").load()


def cpu_ms_per_image(fn, inputs, seconds, min_passes):
    for data in inputs:
        fn(data)
    per_pass = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(per_pass) < min_passes:
        cpu = time.process_time()
        for data in inputs:
            fn(data)
        per_pass.append((time.process_time() - cpu) * 1000 / len(inputs))
    # The median pass, as the Node side reports: a pass another process disturbed moves the mean.
    return statistics.median(per_pass), len(per_pass) * len(inputs)


def main():
    args = json.loads(sys.argv[1])
    inputs = [open(path, "rb").read() for path in args["files"]]
    full_ms, full_images = cpu_ms_per_image(full, inputs, args["seconds"], args["minPasses"])
    draft_ms, _ = cpu_ms_per_image(draft, inputs, args["seconds"] / 2, args["minPasses"])
    print(json.dumps({"pil": PIL.__version__, "fullCpuMs": full_ms, "draftCpuMs": draft_ms, "images": full_images}))


main()

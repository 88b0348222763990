#!/usr/bin/env python3
"""scripts/convert_checkpoint.py — PyTorch checkpoint (.pth / .pt state dict) -> safetensors for stereort.

Developer tool only: needs torch (the runtime never does). Handles the official StereoMamba (bare state_dict),
SMoEStereo / RAFT-Stereo style (DataParallel "module." prefixes), Depth-Anything-V2 (bare state_dict) and wrapped
checkpoints ({'model': ...}, {'state_dict': ...}, {'model_state_dict': ...}, {'net': ...}, FoundationStereo's
{'model', 'global_step', 'epoch'}).

  python3 scripts/convert_checkpoint.py CKPT.pth OUT.safetensors [--arch stereomamba-v1] [--strip-prefix module.]
        [--dtype keep|f32|f16|bf16] [--key model] [--metadata k=v ...] [--list] [--unsafe-pickle]
  python3 scripts/convert_checkpoint.py --self-test OUT.safetensors      (no torch needed; checks the writer)

Rules (formats-and-metrics.md section 10):
  * keys keep their dotted module paths; every --strip-prefix (default "module.") is removed from the start of each
    key, repeatedly ("module.module.x" -> "x");
  * every tensor is kept, BatchNorm buffers included (running_mean, running_var, num_batches_tracked as int64);
    non-tensor entries (epoch, optimizer state, ...) are skipped and reported;
  * nothing is cast unless --dtype is given, and then floating tensors only; int16/int8 tensors are widened to int32
    and uint16/32 to int64 (stereort has no 8/16-bit signed integer types);
  * the file is written atomically (temp + rename): 8-byte little-endian header length, compact JSON header padded
    with spaces to a multiple of 8, tensors in state-dict order, little-endian C order;
  * __metadata__ (strings): source (file name), source_sha256, format ("stereort-safetensors-1"), converter, arch
    (if given) and any --metadata k=v.
Loading uses torch.load(weights_only=True) (no arbitrary code); --unsafe-pickle allows full unpickling for trusted
checkpoints that need it.
"""
import argparse
import hashlib
import json
import os
import struct
import sys

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "params")


def write_safetensors(path, items, metadata):
    """items: list of (name, dtype_str, shape, raw little-endian bytes). Atomic: temp file + rename."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    offset = 0
    seen = set()
    for name, dtype, shape, data in items:
        if name in seen or name == "__metadata__":
            raise SystemExit(f"convert_checkpoint: duplicate or reserved tensor name '{name}'")
        seen.add(name)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for _, _, _, data in items:
                f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return offset


def read_safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n).decode("utf-8"))


def self_test(path):
    """Write a small file without torch (struct-packed data) and read its header back."""
    items = [
        ("a.weight", "F32", (2, 3), struct.pack("<6f", 1, 2, 3, 4, 5, 6)),
        ("bn.num_batches_tracked", "I64", (), struct.pack("<q", 7)),
        ("mask", "BOOL", (3,), bytes([1, 0, 1])),
        ("h", "F16", (2,), struct.pack("<2e", 0.5, -2.0)),
    ]
    write_safetensors(path, items, {"format": "stereort-safetensors-1", "converter": "self-test", "utf8": "µm"})
    h = read_safetensors_header(path)
    assert h["a.weight"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, h["a.weight"]
    assert h["bn.num_batches_tracked"]["data_offsets"] == [24, 32]
    assert h["h"]["data_offsets"] == [35, 39]
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    assert n % 8 == 0
    print(f"self-test: wrote {path} ({len(items)} tensors); check it with: stereort convert {path}")


def unwrap(obj, key):
    """The state dict inside a checkpoint object."""
    if key:
        if not isinstance(obj, dict) or key not in obj:
            raise SystemExit(f"convert_checkpoint: --key {key}: not in the checkpoint (top-level keys: "
                             f"{list(obj)[:20] if isinstance(obj, dict) else type(obj).__name__})")
        return obj[key], key
    if isinstance(obj, dict):
        for k in WRAPPER_KEYS:
            if k in obj and isinstance(obj[k], dict) and obj[k]:
                return obj[k], k
        return obj, None
    if hasattr(obj, "state_dict"):  # a pickled nn.Module
        return obj.state_dict(), "state_dict()"
    raise SystemExit(f"convert_checkpoint: cannot find a state dict in a {type(obj).__name__}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?", help=".pth / .pt file")
    ap.add_argument("output", nargs="?", help="output .safetensors")
    ap.add_argument("--arch", default="", help="architecture name stored in metadata (e.g. stereomamba-v1)")
    ap.add_argument("--strip-prefix", action="append", default=None,
                    help="prefix to remove from keys (repeatable; default: module.)")
    ap.add_argument("--dtype", default="keep", choices=["keep", "f32", "f16", "bf16"],
                    help="cast floating tensors (default: keep)")
    ap.add_argument("--key", default="", help="take the state dict from this top-level key")
    ap.add_argument("--metadata", action="append", default=[], help="KEY=VALUE added to __metadata__")
    ap.add_argument("--list", action="store_true", help="print the converted keys, dtypes and shapes")
    ap.add_argument("--unsafe-pickle", action="store_true", help="allow full unpickling (trusted files only)")
    ap.add_argument("--self-test", metavar="OUT", help="write a small file without torch and exit")
    a = ap.parse_args()
    if a.self_test:
        self_test(a.self_test)
        return
    if not a.checkpoint or not a.output:
        ap.error("need CHECKPOINT and OUTPUT")
    try:
        import torch
    except ImportError:
        raise SystemExit("convert_checkpoint: PyTorch is not installed (pip install torch); only --self-test works "
                         "without it")

    with open(a.checkpoint, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    try:
        obj = torch.load(a.checkpoint, map_location="cpu", weights_only=not a.unsafe_pickle)
    except TypeError:  # torch < 1.13 has no weights_only
        if not a.unsafe_pickle:
            raise SystemExit("convert_checkpoint: this torch cannot load with weights_only=True; pass --unsafe-pickle "
                             "for a trusted checkpoint")
        obj = torch.load(a.checkpoint, map_location="cpu")
    except Exception as e:  # noqa: BLE001 — report and suggest the flag
        raise SystemExit(f"convert_checkpoint: torch.load({a.checkpoint}) failed: {e}\n"
                         "  (a checkpoint with non-tensor objects may need --unsafe-pickle, trusted files only)")
    sd, wrapper = unwrap(obj, a.key)

    prefixes = a.strip_prefix if a.strip_prefix is not None else ["module."]
    widen = {torch.int16: torch.int32, torch.int8: torch.int32, getattr(torch, "uint16", None): torch.int64,
             getattr(torch, "uint32", None): torch.int64}
    names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
    cast_to = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}.get(a.dtype)
    items, skipped, sources = [], [], {}
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            skipped.append(key)
            continue
        name = key
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if p and name.startswith(p) and len(name) > len(p):
                    name, changed = name[len(p):], True
                    break
        if name in sources:
            raise SystemExit(f"convert_checkpoint: keys '{sources[name]}' and '{key}' both become '{name}'")
        sources[name] = key
        t = value.detach().cpu()
        if t.dtype in widen and widen[t.dtype] is not None:
            t = t.to(widen[t.dtype])
        if cast_to is not None and t.is_floating_point():
            t = t.to(cast_to)
        if t.dtype not in names:
            raise SystemExit(f"convert_checkpoint: tensor '{key}' has dtype {t.dtype}, which stereort cannot read")
        t = t.contiguous()
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        if sys.byteorder != "little":
            raise SystemExit("convert_checkpoint: run on a little-endian machine")
        items.append((name, names[t.dtype], tuple(t.shape), data))
        if a.list:
            print(f"{name:60s} {names[t.dtype]:5s} {tuple(t.shape)}")

    meta = {"source": os.path.basename(a.checkpoint), "source_sha256": sha, "format": "stereort-safetensors-1",
            "converter": "scripts/convert_checkpoint.py"}
    if a.arch:
        meta["arch"] = a.arch
    for kv in a.metadata:
        if "=" not in kv:
            raise SystemExit(f"convert_checkpoint: --metadata '{kv}' must be KEY=VALUE")
        k, v = kv.split("=", 1)
        meta[k] = v
    total = write_safetensors(a.output, items, meta)
    print(f"convert_checkpoint: {a.checkpoint} ({'wrapper ' + repr(wrapper) if wrapper else 'bare state dict'}) -> "
          f"{a.output}: {len(items)} tensors, {total / 2**20:.1f} MiB"
          + (f"; skipped non-tensor entries: {skipped[:10]}{' ...' if len(skipped) > 10 else ''}" if skipped else ""))


if __name__ == "__main__":
    main()

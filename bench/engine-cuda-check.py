#!/usr/bin/env python3
"""The engine and the trainer on the GPU against the CPU (schemas/engine.md), for a machine without Node.

Starts `sdt-native serve --device cpu` and `--device cuda` on one checkpoint, sends both the same score,
loss, logits and generate requests (batches as binary messages, as engine/client.ts sends them) and prints
how far the CUDA results are from the CPU reference (the CUDA model computes in bf16). Also checks that a
bad frame gets a named error from the CUDA engine and that it keeps serving, and runs `sdt-native train`
for a few steps on one stream with --device cpu and --device cuda, comparing the step losses.

    python3 bench/engine-cuda-check.py SDT_NATIVE CKPT [DEVICE]   (DEVICE cuda; cpu tests the script itself)
"""
import json, random, struct, subprocess, sys, zlib

MAGIC = b"SDTSTRM\0"


def batch_payload(rows, T, pad=0):
    ids, tgt, wt, seg = [], [], [], []
    for inp, targets in rows:
        n = len(inp)
        ids += inp + [pad] * (T - n)
        tgt += targets + [-1] * (T - n)
        wt += [1.0] * n + [0.0] * (T - n)
        seg += [0] * n + [-1] * (T - n)
    B = len(rows)
    payload = struct.pack("<4I", B, T, 1, 0)
    payload += struct.pack(f"<{B*T}i", *ids) + struct.pack(f"<{B*T}i", *tgt)
    payload += struct.pack(f"<{B*T}f", *wt) + struct.pack(f"<{B*T}i", *seg)
    return payload


def frame(kind, payload):
    head = struct.pack("<II", kind, len(payload))
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


def batch_message(rows, T, pad=0):
    return MAGIC + struct.pack("<IIQ", 1, 0, 0) + frame(5, batch_payload(rows, T, pad))


def train_check(binary, ckpt, rows, T, device, steps=8):
    """Losses of `steps` training steps on one stream, --device cpu against --device cuda."""
    import os, tempfile
    d = tempfile.mkdtemp()
    with open(os.path.join(ckpt, "config.json")) as f:
        model = json.load(f)
    cfg = {"model": model, "total_steps": steps, "schedule": {"lr": 1e-3, "min_lr": 1e-4}, "seed": 1}
    with open(os.path.join(d, "train.json"), "w") as f:
        json.dump(cfg, f)
    stream = MAGIC + struct.pack("<IIQ", 1, 0, 0)
    for i in range(steps):
        stream += frame(1, batch_payload(rows[i % len(rows):] + rows[: i % len(rows)], T))
    stream += frame(4, b"")
    with open(os.path.join(d, "stream.bin"), "wb") as f:
        f.write(stream)
    losses = {}
    for key, dev in [("cpu", "cpu"), ("cuda", device)]:
        r = subprocess.run([binary, "train", "--stream", os.path.join(d, "stream.bin"), "--config",
                            os.path.join(d, "train.json"), "--out", os.path.join(d, key), "--device", dev],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"train --device {dev}: exit {r.returncode}: {r.stderr.strip()[-400:]}")
            return False
        losses[key] = [e["loss"] for e in map(json.loads, r.stdout.split("\n")[:-1]) if e.get("event") == "step"]
    worst = max(abs(a - b) / abs(a) for a, b in zip(losses["cpu"], losses["cuda"]))
    print("train losses cpu ", " ".join(f"{x:.4f}" for x in losses["cpu"]))
    print("train losses cuda", " ".join(f"{x:.4f}" for x in losses["cuda"]))
    print(f"train: {len(losses['cuda'])} steps, worst relative loss difference {worst:.2e}; "
          f"falling on cuda: {losses['cuda'][-1] < losses['cuda'][0]}")
    return len(losses["cuda"]) == steps and worst < 5e-2 and losses["cuda"][-1] < losses["cuda"][0]


class Engine:
    def __init__(self, binary, ckpt, device):
        self.p = subprocess.Popen([binary, "serve", "--ckpt", ckpt, "--device", device],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.p.stdout.readline()
        if not line:
            sys.exit(f"sdt-native serve --device {device} exited ({self.p.wait()}) before it was ready")
        self.ready = json.loads(line)

    def ask(self, fields, message=b""):
        self.p.stdin.write(json.dumps(fields).encode() + b"\n" + message)
        self.p.stdin.flush()
        while True:
            r = json.loads(self.p.stdout.readline())
            if r.get("event") != "step":
                break
        tensor = None
        if r.get("ok") and r.get("frames") == 1:
            head = self.p.stdout.read(36)
            n = struct.unpack("<I", head[28:32])[0]
            payload = self.p.stdout.read(n)
            ndim = struct.unpack("<I", payload[4:8])[0]
            dims = struct.unpack(f"<{ndim}I", payload[8:8 + 4 * ndim])
            count = 1
            for d in dims:
                count *= d
            tensor = struct.unpack(f"<{count}f", payload[8 + 4 * ndim:])
        return r, tensor

    def close(self):
        self.p.stdin.close()
        return self.p.wait()


def main():
    binary, ckpt = sys.argv[1], sys.argv[2]
    device = sys.argv[3] if len(sys.argv) > 3 else "cuda"
    cpu, gpu = Engine(binary, ckpt, "cpu"), Engine(binary, ckpt, device)
    V = cpu.ready["vocab_size"]
    mask = cpu.ready["mask_token_id"]
    rnd = random.Random(3)
    tok = lambda: rnd.choice([t for t in range(4, min(V, 400)) if t != mask])
    rows = []
    for _ in range(24):
        n = rnd.randint(8, 120)
        inp = [tok() for _ in range(n)]
        targets = [tok() if rnd.random() < 0.3 else -1 for _ in range(n)]
        rows.append((inp, targets))
    T = max(len(r[0]) for r in rows)
    msg = batch_message(rows, T)
    ok = True
    for op in ["score", "loss", "logits"]:
        rc, tc = cpu.ask({"id": op, "op": op}, msg)
        rg, tg = gpu.ask({"id": op, "op": op}, msg)
        if not (rc["ok"] and rg["ok"]):
            print(f"{op}: cpu {rc} gpu {rg}")
            ok = False
            continue
        if op == "loss":
            rel = abs(rc["loss"] - rg["loss"]) / abs(rc["loss"])
            print(f"loss  cpu {rc['loss']:.6f}  cuda {rg['loss']:.6f}  rel diff {rel:.2e}")
            ok &= rel < 2e-2
        else:
            fin = [(a, b) for a, b in zip(tc, tg) if a == a and abs(a) != float("inf")]
            mx = max(abs(a - b) for a, b in fin)
            scale = max(abs(a) for a, _ in fin)
            print(f"{op:6} {len(tc)} values  max abs diff {mx:.4g}  (max |cpu| {scale:.4g})")
            ok &= mx <= 5e-2 * max(1.0, scale)
    prompts = [[tok() for _ in range(rnd.randint(4, 30))] for _ in range(6)]
    req = {"id": "g", "prompts": prompts, "max_new": 32, "block": 16, "threshold": 0.9, "eos": -1}
    rc, _ = cpu.ask(req)
    rg, _ = gpu.ask(req)
    same = sum(a == b for x, y in zip(rc["results"], rg["results"]) for a, b in zip(x["tokens"], y["tokens"]))
    total = sum(len(x["tokens"]) for x in rc["results"])
    print(f"generate: {same}/{total} tokens equal; forward passes cpu {sum(x['forward_passes'] for x in rc['results'])}"
          f" cuda {sum(x['forward_passes'] for x in rg['results'])}; ms cpu {rc['timings']['total_ms']:.0f}"
          f" cuda {rg['timings']['total_ms']:.0f}")
    bad = bytearray(msg)
    bad[-1] ^= 0xFF
    rb, _ = gpu.ask({"id": "bad", "op": "score"}, bytes(bad))
    ra, _ = gpu.ask({"id": "again", "op": "loss"}, msg)
    print(f"bad frame on cuda: code {rb.get('code')}; next request ok: {ra.get('ok')}")
    ok &= rb.get("code") == "bad_frame" and ra.get("ok") is True
    print(f"exit codes: cpu {cpu.close()} cuda {gpu.close()}")
    train_rows = [(r[0][:T], [t if t >= 0 else -1 for t in r[1]]) for r in rows]
    ok &= train_check(binary, ckpt, train_rows, T, device)
    print("RESULT", "pass" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

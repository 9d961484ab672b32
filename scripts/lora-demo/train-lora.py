#!/usr/bin/python3
"""Trains a LoRA adapter for a GPT-2 GGUF model (the demo model, clinical-gpt2-q8_0.gguf) with PyTorch
on the CPU and saves it as a PEFT folder (adapter_config.json + adapter_model.safetensors) for
`xent convert --lora`. The base weights are read from the GGUF file itself (F32, F16 and Q8_0 tensors,
dequantized exactly), so the adapter is trained against the very weights xent runs.

    train-lora.py --model BASE.gguf --tokens TRAIN.ids --out DIR [--steps 300 --rank 8 --alpha 16]
    train-lora.py --model BASE.gguf --check-logits IDS   # prints the base model's last-position logits

TRAIN.ids holds token ids (whitespace separated, as `xent tokenize --ids` prints them). Python 3 with
python3-torch and python3-numpy (Debian packages); nothing else. Outside xent's build and tests."""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# ---- a minimal GGUF v3 reader: metadata and the F32 / F16 / Q8_0 tensors ----
GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf(path):
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(GGUF_SCALARS[t])

    if data[:4] != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    if version != 3:
        sys.exit(f"{path}: GGUF v{version}, v3 expected")
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("<Q") for _ in range(take("<I"))]
        infos.append((name, dims, take("<I"), take("<Q")))
    align = meta.get("general.alignment", 32)
    base = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, t, off in infos:
        n = int(np.prod(dims))
        start = base + off
        if t == 0:
            a = np.frombuffer(data, np.float32, n, start)
        elif t == 1:
            a = np.frombuffer(data, np.float16, n, start).astype(np.float32)
        elif t == 8:  # Q8_0: per 32 values an f16 scale and 32 int8 quants
            blocks = np.frombuffer(data, np.uint8, n // 32 * 34, start).reshape(-1, 34)
            d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
            a = (blocks[:, 2:].view(np.int8).astype(np.float32) * d).reshape(-1)
        else:
            sys.exit(f"{path}: tensor {name} has ggml type {t}; this trainer reads F32, F16 and Q8_0")
        # GGUF dims are innermost first; numpy wants them outermost first.
        tensors[name] = torch.from_numpy(np.array(a, dtype=np.float32).reshape(list(reversed(dims))))
    return meta, tensors


# ---- GPT-2 with LoRA factors on its four matrices per block ----
class LoraLinear(torch.nn.Module):
    """y = x W^T + b + (alpha / r) (x A^T) B^T, W and b frozen; A, B in PEFT's orientation."""

    def __init__(self, w, b, rank, alpha, gen):
        super().__init__()
        self.w, self.b = w, b
        out_f, in_f = w.shape
        self.scale = alpha / rank
        self.lora_A = torch.nn.Parameter(torch.empty(rank, in_f))
        self.lora_B = torch.nn.Parameter(torch.zeros(out_f, rank))
        # PEFT's default: A Kaiming-uniform (a = sqrt(5)), B zero, so training starts at the base model.
        bound = 1.0 / math.sqrt(in_f)
        with torch.no_grad():
            self.lora_A.uniform_(-bound, bound, generator=gen)

    def forward(self, x, use_lora=True):
        y = torch.nn.functional.linear(x, self.w, self.b)
        if use_lora:
            y = y + self.scale * ((x @ self.lora_A.t()) @ self.lora_B.t())
        return y


class Gpt2(torch.nn.Module):
    MODULES = [("attn_qkv", "attn.c_attn"), ("attn_output", "attn.c_proj"), ("ffn_up", "mlp.c_fc"),
               ("ffn_down", "mlp.c_proj")]

    def __init__(self, meta, t, rank, alpha, seed):
        super().__init__()
        self.n_layer = meta["gpt2.block_count"]
        self.n_head = meta["gpt2.attention.head_count"]
        self.eps = meta["gpt2.attention.layer_norm_epsilon"]
        self.n_ctx = meta["gpt2.context_length"]
        self.t = t
        gen = torch.Generator().manual_seed(seed)
        self.lora = torch.nn.ModuleDict()
        for i in range(self.n_layer):
            for g, _ in self.MODULES:
                p = f"blk.{i}.{g}"
                self.lora[f"{i}_{g}"] = LoraLinear(t[p + ".weight"], t[p + ".bias"], rank, alpha, gen)
        self.out = t.get("output.weight", t["token_embd.weight"])

    def ln(self, x, p):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.t[p + ".weight"], self.t[p + ".bias"], self.eps)

    def forward(self, ids, use_lora=True):
        b, n = ids.shape
        if n > self.n_ctx:
            raise ValueError(f"{n} tokens exceed the model's context of {self.n_ctx}")
        x = self.t["token_embd.weight"][ids] + self.t["position_embd.weight"][:n]
        hd = x.shape[-1] // self.n_head
        for i in range(self.n_layer):
            L = lambda g, v: self.lora[f"{i}_{g}"](v, use_lora)  # noqa: E731
            q, k, v = L("attn_qkv", self.ln(x, f"blk.{i}.attn_norm")).split(x.shape[-1], dim=-1)
            q, k, v = (z.view(b, n, self.n_head, hd).transpose(1, 2) for z in (q, k, v))
            a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(
                torch.nn.functional, "scaled_dot_product_attention") else self.attention(q, k, v)
            x = x + L("attn_output", a.transpose(1, 2).reshape(b, n, -1))
            h = torch.nn.functional.gelu(L("ffn_up", self.ln(x, f"blk.{i}.ffn_norm")), approximate="tanh")
            x = x + L("ffn_down", h)
        return self.ln(x, "output_norm") @ self.out.t()

    @staticmethod
    def attention(q, k, v):
        n = q.shape[-2]
        s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        s = s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
        return torch.softmax(s, dim=-1) @ v

    def save_peft(self, out, rank, alpha):
        """PEFT's layout: adapter_config.json and adapter_model.safetensors (F32), the Hugging Face
        module names of GPT2LMHeadModel under base_model.model."""
        os.makedirs(out, exist_ok=True)
        tensors = {}
        for i in range(self.n_layer):
            for g, hf in self.MODULES:
                m = self.lora[f"{i}_{g}"]
                stem = f"base_model.model.transformer.h.{i}.{hf}"
                tensors[stem + ".lora_A.weight"] = m.lora_A.detach().contiguous().numpy()
                tensors[stem + ".lora_B.weight"] = m.lora_B.detach().contiguous().numpy()
        header, blobs, off = {}, [], 0
        for name in sorted(tensors):
            a = tensors[name].astype("<f4")
            header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
            blobs.append(a.tobytes())
            off += a.nbytes
        header["__metadata__"] = {"format": "pt"}
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        tmp = os.path.join(out, "adapter_model.safetensors.tmp")
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(out, "adapter_model.safetensors"))
        cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "lora_dropout": 0.0,
               "bias": "none", "fan_in_fan_out": True, "target_modules": ["c_attn", "c_proj", "c_fc"],
               "base_model_name_or_path": "clinical-gpt2-q8_0.gguf", "use_rslora": False, "use_dora": False}
        with open(os.path.join(out, "adapter_config.json"), "w") as f:
            json.dump(cfg, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens")
    ap.add_argument("--out")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check-logits", help="ids file: print the base model's logits at the last position, then exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    meta, t = read_gguf(args.model)
    model = Gpt2(meta, t, args.rank, args.alpha, args.seed)
    if args.check_logits:
        ids = torch.tensor([[int(x) for x in open(args.check_logits).read().split()]])
        with torch.no_grad():
            print(json.dumps(model(ids, use_lora=False)[0, -1].tolist()))
        return
    if not args.tokens or not args.out:
        ap.error("--tokens and --out are needed to train")
    ids = torch.tensor([int(x) for x in open(args.tokens).read().split()], dtype=torch.long)
    if len(ids) <= args.window + 1:
        sys.exit(f"{args.tokens}: {len(ids)} tokens, fewer than one window of {args.window}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        starts = torch.randint(0, len(ids) - args.window - 1, (args.batch,), generator=gen)
        batch = torch.stack([ids[s:s + args.window + 1] for s in starts.tolist()])
        logits = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        lr = args.lr * min(1.0, step / 20) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        if step == 1 or step % 25 == 0:
            print(f"step {step:4d}  loss {loss.item():.3f}  ppl {math.exp(loss.item()):.2f}", flush=True)
    model.save_peft(args.out, args.rank, args.alpha)
    n_params = sum(p.numel() for p in params)
    print(f"wrote {args.out}: rank {args.rank}, alpha {args.alpha}, {n_params} trained parameters")


if __name__ == "__main__":
    main()

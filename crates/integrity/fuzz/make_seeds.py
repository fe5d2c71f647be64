#!/usr/bin/env python3
"""Seed inputs for the fuzz targets, written by the reference libraries (gguf-py, safetensors).

Run by hand (not in CI), with gguf-py and safetensors installed:
    python crates/integrity/fuzz/make_seeds.py [OUT_DIR]
Writes OUT_DIR/<target>/seed-* (OUT_DIR defaults to seeds/ next to this script): small valid
inputs of every shape each parser accepts, so the fuzzer starts deep inside the formats instead of
guessing magic numbers. The committed corpus (corpus/<target>/) is the libFuzzer-minimised result
of fuzzing from these seeds; the engine's tests also read the GGUF seeds as golden files.
"""
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from safetensors.numpy import save

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
rng = np.random.default_rng(0)
os.makedirs(out, exist_ok=True)


def write(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


def gguf_bytes(build):
    path = os.path.join(out, "tmp.gguf")
    w = GGUFWriter(path, "llama")
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


def every_value_type(w):
    w.add_uint8("t.u8", 7)
    w.add_int8("t.i8", -7)
    w.add_uint16("t.u16", 700)
    w.add_int16("t.i16", -700)
    w.add_uint32("t.u32", 70000)
    w.add_int32("t.i32", -70000)
    w.add_float32("t.f32", 0.5)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo")
    w.add_array("t.arr_int", [1, 2, 3])
    w.add_array("t.arr_str", ["a", "bc"])
    w.add_uint64("t.u64", 1 << 40)
    w.add_int64("t.i64", -(1 << 40))
    w.add_float64("t.f64", 0.25)
    w.add_tensor("w", rng.standard_normal((2, 4)).astype(np.float32))


def quantised(w):
    w.add_uint32("general.alignment", 64)
    w.add_tensor("f16", rng.standard_normal((4, 8)).astype(np.float16))
    for name, t, shape in [("q8", T.Q8_0, 34), ("q4", T.Q4_0, 18), ("q41", T.Q4_1, 20), ("q4k", T.Q4_K, 144), ("q6k", T.Q6_K, 210)]:
        raw = rng.integers(0, 256, size=(1, shape), dtype=np.uint8)
        w.add_tensor(name, raw, raw_dtype=t)


write("gguf_header", "seed-values", gguf_bytes(every_value_type))
write("gguf_header", "seed-quantised", gguf_bytes(quantised))
write("gguf_header", "seed-empty", gguf_bytes(lambda w: None))

write("safetensors_header", "seed-f32", save({
    "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((4, 4)).astype(np.float32),
    "model.norm.weight": np.ones(4, dtype=np.float32),
}, metadata={"format": "pt"}))
write("safetensors_header", "seed-mixed", save({
    "a": rng.standard_normal((2, 3)).astype(np.float16),
    "b": np.arange(3, dtype=np.int64),
    "c": np.zeros((0, 2), dtype=np.float32),
    "d": np.array(1.5, dtype=np.float64),
}))

llama = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "vocab_size": 256, "torch_dtype": "bfloat16"}
write("model_config", "seed-llama", json.dumps(llama).encode())
write("model_config", "seed-other", json.dumps({"architectures": ["GPT2LMHeadModel"], "n_embd": 8}).encode())
write("model_config", "seed-empty-list", b'{"architectures": []}')

cot = {"prompt": "What is 2 + 2?", "chain_of_thought": "Two and two make four.", "final_answer": "4"}
completion = {"prompt": "Say hi", "completion": "hi"}
chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello\u200b"}]}
rows = [json.dumps(r, ensure_ascii=False) for r in (cot, completion, chat)]
write("jsonl_intake", "seed-rows", ("\n".join(rows) + "\n").encode())
write("jsonl_intake", "seed-bad", b'{"prompt": 1}\n\xff\xfe\n{"prompt": "a", "extra": true}\n\n')

# What the reference reader sees in each GGUF seed, for the engine's golden test: metadata values
# (arrays as lists) and each tensor's type, row-major shape, absolute data offset and, for float
# tensors, values.
from gguf import GGUFReader  # noqa: E402
from gguf import GGUFValueType as V  # noqa: E402

expected = {}
for name in sorted(os.listdir(os.path.join(out, "gguf_header"))):
    reader = GGUFReader(os.path.join(out, "gguf_header", name))
    metadata = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        value = field.contents()
        metadata[key] = {"type": field.types[0].name, "value": value}
    tensors = {}
    for t in reader.tensors:
        tensors[t.name] = {"type": t.tensor_type.name, "shape": [int(d) for d in reversed(t.shape)],
                           "offset": int(t.data_offset)}
        # Float tensors also carry their values (quantised seeds hold random bytes, maybe NaN scales).
        if t.tensor_type.name in ("F32", "F16"):
            tensors[t.name]["values"] = [float(v) for v in np.asarray(t.data, dtype=np.float32).reshape(-1)]
    expected[name] = {"metadata": metadata, "tensors": tensors}
with open(os.path.join(out, "gguf_expected.json"), "w") as f:
    json.dump(expected, f, indent=1, ensure_ascii=False)
    f.write("\n")

# assay's trusted PRISM runner. The Rust orchestrator (crates/prism/src/runner.rs) starts it with
# one JSON payload line on stdin and talks to it in JSON lines: the runner's protocol channel is
# a private copy of stdout; the miner's own prints are sent to stderr. The orchestrator owns the
# data, the budgets and every number of the score; this script only runs torch.
#
# Modes: "instantiate" (forced-seed build_model + parameter count), "train" (the miner's
# train(ctx) with the prequential instrument), "heldout" (random-init twin and trained model on
# chunks the orchestrator sends), "corpus" (dump pydoc_data.topics).
#
# Crash recovery: in "train" mode the orchestrator may answer a "next" with "checkpoint"; the
# runner then saves its torch state (model, gradients, every optimizer and LR scheduler built so
# far, RNG states) to the payload's checkpoint_file and answers "checkpointed". A payload with
# "resume" names such a state: it is loaded into the model, optimizers and schedulers when the
# stream is first pulled, and the stream continues where the checkpointed run stood.
import dataclasses
import importlib.util
import json
import math
import os
import random
import sys
import types

# A torchrun rank of the distributed gate reads its payload from the file the launcher names
# and writes its messages to a file of its own (torchrun mixes the ranks' stdout).
_RANK_PAYLOAD = os.environ.get("ASSAY_PRISM_PAYLOAD") if os.environ.get("RANK") is not None else None
if _RANK_PAYLOAD:
    _PROTO_IN = open(_RANK_PAYLOAD, "r", encoding="utf-8")
    _PROTO_OUT = open(os.path.join(os.path.dirname(_RANK_PAYLOAD), "gate-rank" + os.environ["RANK"] + ".jsonl"),
                      "w", encoding="utf-8", buffering=1)
else:
    _PROTO_IN = os.fdopen(os.dup(0), "r", encoding="utf-8")
    _PROTO_OUT = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
# Miner output must never reach the protocol channel, and miner code must not read it.
os.dup2(2, 1)
_devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(_devnull, 0)
sys.stdout = os.fdopen(1, "w", buffering=1)


# Bound before any miner code runs, like the instrument's references below.
_dumps = json.dumps


def send(message):
    _PROTO_OUT.write(_dumps(message, allow_nan=False) + "\n")
    _PROTO_OUT.flush()


def receive():
    line = _PROTO_IN.readline()
    if not line:
        raise SystemExit("prism-runner: orchestrator closed the channel")
    return json.loads(line)


def fail(kind, message, code=3):
    send({"type": "error", "kind": kind, "message": message})
    raise SystemExit(code)


payload = receive()
mode = payload["mode"]

if mode == "corpus":
    import pydoc_data.topics

    send({"type": "corpus", "topics": dict(pydoc_data.topics.topics)})
    raise SystemExit(0)


if mode == "gate":
    # PRISM's Gate B: torchrun --standalone --nnodes=1 --nproc-per-node=N over this same script;
    # each rank runs the miner's train(ctx) on the same synthetic batches and writes its losses
    # and parameter digest; the orchestrator compares them.
    os.environ["ASSAY_PRISM_PAYLOAD"] = payload["payload_file"]
    from torch.distributed.run import main as torchrun_main

    failure = None
    try:
        torchrun_main(["--standalone", "--nnodes=1", "--nproc-per-node=" + str(int(payload["nproc"])),
                       "--max-restarts=0", os.path.abspath(__file__)])
    except BaseException as exc:
        failure = (type(exc).__name__ + ": " + str(exc))[:1000]
    ranks = []
    for rank in range(int(payload["nproc"])):
        path = os.path.join(os.path.dirname(payload["payload_file"]), "gate-rank" + str(rank) + ".jsonl")
        messages = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                messages = [json.loads(line) for line in handle if line.strip()]
        ranks.append(messages)
    send({"type": "gate", "failure": failure, "ranks": ranks})
    raise SystemExit(0)

context_data = payload["context"]
forced_seed = int(context_data["seed"])
random.seed(forced_seed)

import torch  # noqa: E402  (seeded before, miner code after)

torch.set_num_threads(max(1, int(payload.get("threads", 1))))

# The instrument's own references, taken before any miner code runs. A bundle can rebind
# torch.nn.functional.cross_entropy, torch.Tensor.item, torch.tensor or math.isfinite, return a
# tensor subclass, or leave a torch function / dispatch mode pushed; none of that reaches these
# (TensorBase is an immutable C type, the _C functions are builtins bound here).
_PLAIN_TENSOR = torch.Tensor
_TensorBase = torch._C.TensorBase
_cross_entropy_loss = torch._C._nn.cross_entropy_loss
_MEAN_REDUCTION = 1
_new_tensor = torch.tensor
_LONG = torch.long
_DisableTorchFunction = torch._C.DisableTorchFunction
_DisableTorchDispatch = torch._C._DisableTorchDispatch
_no_grad = torch.no_grad
_isfinite = math.isfinite
_type = type
_float = float

# Every optimizer and LR scheduler the bundle builds, in creation order, for the checkpoints.
_optimizers = []
_schedulers = []
_optimizer_init = torch.optim.Optimizer.__init__


def _tracked_optimizer_init(self, *args, **kwargs):
    _optimizer_init(self, *args, **kwargs)
    _optimizers.append(self)


torch.optim.Optimizer.__init__ = _tracked_optimizer_init
_scheduler_base = getattr(torch.optim.lr_scheduler, "LRScheduler", None) or torch.optim.lr_scheduler._LRScheduler
_scheduler_init = _scheduler_base.__init__


def _tracked_scheduler_init(self, *args, **kwargs):
    _schedulers.append(self)
    _scheduler_init(self, *args, **kwargs)


_scheduler_base.__init__ = _tracked_scheduler_init
_resume = payload.get("resume")


def force_init(seed):
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    try:
        torch.use_deterministic_algorithms(True)
    except Exception:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if hasattr(torch.backends, "cudnn"):
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


force_init(forced_seed)
device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
max_parameters = int(context_data["max_parameters"])
try:
    _netns = os.readlink("/proc/self/ns/net")
except OSError:
    _netns = None
_gpu_name = None
if device.type == "cuda":
    try:
        _gpu_name = torch.cuda.get_device_name(0)
    except Exception:
        _gpu_name = None
send({"type": "hello", "torch": torch.__version__, "device": str(device), "seed": forced_seed, "netns": _netns,
      "gpu_name": _gpu_name})
if device.type == "cpu" and os.path.exists("/dev/nvidiactl"):
    # CUDA fails to initialise under a small address-space cap and torch then says "no GPU".
    send({"type": "note", "message": "an NVIDIA device is present but CUDA is unavailable: running on CPU "
          "(an address-space cap below ~32 GiB stops CUDA; raise or drop --memory-mb)"})


try:
    from torch.nn.parameter import UninitializedBuffer as _UninitBuffer
    from torch.nn.parameter import UninitializedParameter as _UninitParam
except Exception:  # older torch
    _UninitParam = _UninitBuffer = ()
_Module = torch.nn.Module
_module_modules = torch.nn.Module.modules
_object_getattribute = object.__getattribute__
_isinstance = isinstance
_id = id
_int = int


def _numel(tensor):
    if (_UninitParam and _isinstance(tensor, _UninitParam)) or (_UninitBuffer and _isinstance(tensor, _UninitBuffer)):
        return 0
    try:
        return _int(_TensorBase.numel(tensor))
    except (ValueError, RuntimeError, TypeError):
        return 0


def count_params(model):
    """Every tensor reachable from the model: parameters; floating-point (and complex) tensors held
    as buffers, as plain attributes of any submodule, or inside lists, tuples, dicts and sets of
    them (depth 4). Each tensor counts once. PRISM counts parameters only; a model can hide
    trainable weights in the other places (issue #19), so they count toward the cap too. Integer
    and boolean tensors (masks, index tables) do not."""
    seen = set()
    total = 0
    budget = [200_000]

    def add(tensor, is_param):
        nonlocal total
        key = _id(tensor)
        if key in seen:
            return
        seen.add(key)
        if not is_param:
            try:
                if not (tensor.is_floating_point() or tensor.is_complex()):
                    return
            except Exception:
                return
        total += _numel(tensor)

    def walk(value, depth):
        budget[0] -= 1
        if budget[0] < 0 or depth > 4:
            return
        if _isinstance(value, _TensorBase):
            add(value, _isinstance(value, torch.nn.Parameter))
        elif _isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                walk(item, depth + 1)
        elif _isinstance(value, dict):
            for item in value.values():
                walk(item, depth + 1)

    try:
        modules = list(_module_modules(model))
    except Exception:
        modules = [model]
    for module in modules:
        try:
            attributes = _object_getattribute(module, "__dict__")
        except Exception:
            continue
        for key, value in list(attributes.items()):
            if key in ("_parameters", "_buffers"):
                for tensor in list(value.values()):
                    if tensor is not None:
                        add(tensor, key == "_parameters")
            elif key != "_modules":
                walk(value, 0)
    return total


def tensor_digest(model):
    """Per-tensor (sum, sum of squares) in float64 of every floating-point tensor of the model's
    state, to tell whether training changed anything."""
    digest = []
    try:
        state = model.state_dict()
    except Exception:
        return None
    with _no_grad():
        for key in sorted(state):
            value = state[key]
            if _isinstance(value, _TensorBase) and value.is_floating_point():
                v = value.detach().double()
                digest.append((key, _float(v.sum()), _float((v * v).sum())))
    return digest


def logits_of(output):
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    elif not isinstance(output, _PLAIN_TENSOR) and hasattr(output, "logits"):
        output = output.logits
    if _type(output) is not _PLAIN_TENSOR:
        # A subclass (or anything else) could answer the loss computation with its own numbers.
        fail("capture", "the model's forward must return a plain torch.Tensor of logits (or a tuple/list "
             "starting with one, or an object with .logits), got " + _type(output).__name__, 5)
    return output


def mean_loss(model, tokens):
    # PRISM's instrument: mean next-token cross-entropy in nats, targets mod the logit width.
    with _no_grad():
        logits = logits_of(model(tokens))
    # From here on only the references bound at start run, with no torch function or dispatch
    # override active: the number is the cross-entropy of what the model returned.
    with _DisableTorchFunction(), _DisableTorchDispatch():
        logits = _TensorBase.detach(logits)
        if _TensorBase.dim(logits) == 2:
            logits = _TensorBase.unsqueeze(logits, 0)
        rows, cols = _TensorBase.size(tokens, 0), _TensorBase.size(tokens, 1)
        if _TensorBase.dim(logits) != 3 or (_TensorBase.size(logits, 0), _TensorBase.size(logits, 1)) != (rows, cols):
            # The orchestrator weighs the loss by rows * (cols - 1) predicted positions.
            fail("capture", "the logits' shape " + str(tuple(_TensorBase.size(logits))) + " does not cover the batch "
                 + str((rows, cols)), 5)
        vocab = _TensorBase.size(logits, 2)
        predictions = _TensorBase.reshape(_TensorBase.narrow(logits, 1, 0, cols - 1), (-1, vocab))
        targets = _TensorBase.remainder(_TensorBase.reshape(_TensorBase.narrow(tokens, 1, 1, cols - 1), (-1,)), vocab)
        loss = _cross_entropy_loss(_TensorBase.float(predictions), targets, None, _MEAN_REDUCTION, -100, 0.0)
        value = _float(_TensorBase.item(loss))
    return value if _isfinite(value) else None


def model_device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:
        return device


def tensor_of(batch, model):
    tokens = _TensorBase.view(_new_tensor(batch["tokens"], dtype=_LONG), (batch["rows"], batch["cols"]))
    return _TensorBase.to(tokens, model_device(model))


@dataclasses.dataclass
class PrismBatch:
    tokens: object
    targets: object = None
    metadata: object = None


interface = types.ModuleType("prism_challenge.evaluator.interface")
interface._MINER_BUILD_MODEL = None
interface._CAPTURE_STARTED = False


@dataclasses.dataclass(frozen=True)
class PrismContext:
    vocab_size: int = 4096
    sequence_length: int = 128
    max_layers: int = 96
    max_parameters: int = 150_000_000
    seed: int = 1337
    data_dir: object = None
    artifacts_dir: object = None
    reference_tokenizer_dir: object = None
    token_budget: object = None
    step_budget: object = None
    budget_seconds: object = None
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    distributed_backend: object = None
    device: str = "cpu"
    checkpoint_dir: object = None
    resume_checkpoint_dir: object = None
    is_resume: bool = False
    attempt: int = 1

    @property
    def max_seq_len(self):
        return self.sequence_length

    @property
    def max_params(self):
        return self.max_parameters

    def build_model(self, *args, **kwargs):
        force_init(self.seed)
        return interface._MINER_BUILD_MODEL(self, *args, **kwargs)

    def iter_train_batches(self, model, *, batch_size=8, seq_len=None, tokenizer=None):
        return iterate_capture(model, batch_size, seq_len or self.sequence_length, tokenizer)

    def reference_tokenizer(self, name):
        # No tokenizer files are staged: the instrument stays byte-level (PRISM's default).
        send({"type": "note", "message": "reference_tokenizer(" + repr(name) + ") is not staged; byte-level tokens are used"})
        return None


@dataclasses.dataclass(frozen=True)
class TrainingRecipe:
    learning_rate: float = 3e-4
    batch_size: int = 4
    optimizer: str = "adamw"
    scheduler: str = "cosine"
    weight_decay: float = 0.01


interface.PrismContext = PrismContext
interface.PrismBatch = PrismBatch
interface.TrainingRecipe = TrainingRecipe
for name in ("prism_challenge", "prism_challenge.evaluator"):
    package = types.ModuleType(name)
    package.__path__ = []
    sys.modules[name] = package
sys.modules["prism_challenge"].evaluator = sys.modules["prism_challenge.evaluator"]
sys.modules["prism_challenge.evaluator"].interface = interface
sys.modules["prism_challenge.evaluator.interface"] = interface

_gate_rank = mode == "gate_rank"
ctx = PrismContext(
    rank=int(os.environ.get("RANK", "0")) if _gate_rank else 0,
    local_rank=int(os.environ.get("LOCAL_RANK", "0")) if _gate_rank else 0,
    world_size=int(os.environ.get("WORLD_SIZE", "1")) if _gate_rank else 1,
    distributed_backend="gloo" if _gate_rank else None,
    vocab_size=int(context_data["vocab_size"]),
    sequence_length=int(context_data["sequence_length"]),
    max_parameters=max_parameters,
    seed=forced_seed,
    data_dir=context_data.get("data_dir"),
    artifacts_dir=context_data.get("artifacts_dir"),
    token_budget=context_data.get("token_budget"),
    step_budget=context_data.get("step_budget"),
    budget_seconds=context_data.get("budget_seconds"),
    device=str(device),
    is_resume=bool(_resume) and mode == "train",
    attempt=int(_resume["attempt"]) if _resume and mode == "train" else 1,
)

trained_model = None


_last_count = [None]


def check_cap(model, stage, report=True):
    params = count_params(model)
    if report or params != _last_count[0]:
        # Sent when it changes, so a model that grows mid-run shows where it grew.
        send({"type": "params", "stage": stage, "count": params})
    _last_count[0] = params
    if params > max_parameters:
        fail("param_cap", stage + ": the model holds " + str(params) + " parameters and tensors, over the cap of "
             + str(max_parameters), 4)


_first_digest = [None]


_gate_losses = []


def iterate_gate(model, batch_size, seq_len):
    # The gate's batches: windows of the payload's byte tokens, the same on every rank.
    data = payload["gate_tokens"]
    span = batch_size * seq_len
    for step in range(int(payload["gate_steps"])):
        check_cap(model, "gate step " + str(step), report=False)
        start = (step * span) % max(1, len(data) - span)
        window = data[start:start + span]
        tokens = tensor_of({"tokens": window, "rows": batch_size, "cols": seq_len}, model)
        _gate_losses.append(mean_loss(model, tokens))
        yield PrismBatch(tokens=tokens)


def _numpy_random():
    numpy = sys.modules.get("numpy")
    return getattr(numpy, "random", None) if numpy is not None else None


def save_checkpoint(model, step):
    # Plain types and tensors only, so the resumed runner loads it with weights_only=True.
    numpy_random = _numpy_random()
    numpy_state = None
    if numpy_random is not None:
        name, keys, pos, has_gauss, cached = numpy_random.get_state()
        numpy_state = [str(name), [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]
    state = {
        "model": {key: value.detach().to("cpu").clone() for key, value in model.state_dict().items()},
        "grads": [None if p.grad is None else p.grad.detach().to("cpu").clone() for p in model.parameters()],
        "optimizers": [optimizer.state_dict() for optimizer in _optimizers],
        "schedulers": [scheduler.state_dict() for scheduler in _schedulers],
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python_rng": random.getstate(),
        "numpy_rng": numpy_state,
        "first_digest": _first_digest[0],
        "step": step,
    }
    path = payload["checkpoint_file"]
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(model):
    try:
        state = torch.load(_resume["state"], map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        params = list(model.parameters())
        if len(params) != len(state["grads"]):
            raise ValueError("the model has " + str(len(params)) + " parameters, the checkpoint " + str(len(state["grads"])))
        for param, grad in zip(params, state["grads"]):
            param.grad = None if grad is None else grad.to(param.device)
        for kind, live, saved in (("optimizers", _optimizers, state["optimizers"]),
                                  ("schedulers", _schedulers, state["schedulers"])):
            if len(live) != len(saved):
                raise ValueError("the bundle built " + str(len(live)) + " " + kind + " before its first batch, the "
                                 "checkpointed run had " + str(len(saved)))
            for obj, obj_state in zip(live, saved):
                obj.load_state_dict(obj_state)
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        random.setstate(state["python_rng"])
        numpy_random = _numpy_random()
        if state["numpy_rng"] is not None and numpy_random is not None:
            name, keys, pos, has_gauss, cached = state["numpy_rng"]
            numpy_random.set_state((name, sys.modules["numpy"].array(keys, dtype="uint32"), pos, has_gauss, cached))
    except SystemExit:
        raise
    except BaseException as exc:
        fail("resume", "cannot restore the checkpointed state: " + (type(exc).__name__ + ": " + str(exc))[:1000], 6)
    _first_digest[0] = state["first_digest"]
    return int(state["step"])


def iterate_capture(model, batch_size, seq_len, tokenizer):
    global trained_model
    if interface._CAPTURE_STARTED:
        return
    interface._CAPTURE_STARTED = True
    trained_model = model
    if _gate_rank:
        yield from iterate_gate(model, int(batch_size), int(seq_len))
        return
    check_cap(model, "scored_model")
    send({"type": "begin", "batch_size": int(batch_size), "seq_len": int(seq_len), "tokenizer": tokenizer is not None})
    first = True
    step = 0
    if ctx.is_resume:
        # The model, optimizers and schedulers exist by now (the stream is pulled from the
        # training loop): they take the checkpointed state, and the step-0 batch lies behind.
        step = load_checkpoint(model)
        first = False
    while True:
        if not first:
            # A step boundary: the miner's code ran since the last batch.
            check_cap(model, "step " + str(step), report=False)
        send({"type": "next"})
        message = receive()
        while message["type"] == "checkpoint":
            save_checkpoint(model, step)
            send({"type": "checkpointed"})
            message = receive()
        if message["type"] == "stop":
            return
        tokens = tensor_of(message, model)
        loss = mean_loss(model, tokens)
        if first:
            first = False
            check_cap(model, "after_first_forward")
            _first_digest[0] = tensor_digest(model)
        step += 1
        send({"type": "loss", "loss": loss})
        yield PrismBatch(tokens=tokens)


def import_file(path, module_name):
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        fail("import", "cannot import " + path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


bundle_dir = payload["bundle_dir"]
arch_path = os.path.join(bundle_dir, payload["architecture_entrypoint"])
for directory in (bundle_dir, os.path.dirname(arch_path), os.path.dirname(os.path.join(bundle_dir, payload["training_entrypoint"]))):
    if directory not in sys.path:
        sys.path.insert(0, directory)
arch_module = import_file(arch_path, os.path.splitext(os.path.basename(arch_path))[0])
miner_build_model = getattr(arch_module, payload["build_model_symbol"], None)
if not callable(miner_build_model):
    fail("contract", payload["architecture_entrypoint"] + " has no callable " + payload["build_model_symbol"])
interface._MINER_BUILD_MODEL = miner_build_model


def forced_build_model(*args, **kwargs):
    force_init(forced_seed)
    return miner_build_model(*args, **kwargs)


# Training code that does `from architecture import build_model` binds to the forced wrapper.
setattr(arch_module, payload["build_model_symbol"], forced_build_model)


def build_checked():
    model = forced_build_model(ctx)
    if not isinstance(model, torch.nn.Module):
        fail("build_model_return_type", "build_model returned " + type(model).__name__ + ", not a torch.nn.Module")
    return model


def run_instantiate():
    model = build_checked()
    before = count_params(model)
    forward_error = None
    try:
        # Best effort, as PRISM: the forward only materialises lazy parameters; a model whose
        # forward fails on this dummy batch is still counted (and an over-cap one refused).
        with torch.no_grad():
            model(torch.zeros(1, ctx.sequence_length, dtype=torch.long, device=model_device(model)))
    except Exception as exc:
        forward_error = (type(exc).__name__ + ": " + str(exc))[:300]
        send({"type": "note", "message": "the dummy forward failed (" + forward_error + "); parameters counted without it"})
    send({"type": "instantiated", "params_before_forward": before, "params": count_params(model)})


def run_train():
    train_path = os.path.join(bundle_dir, payload["training_entrypoint"])
    train_module = import_file(train_path, os.path.splitext(os.path.basename(train_path))[0])
    miner_train = getattr(train_module, payload["train_symbol"], None)
    if not callable(miner_train):
        fail("contract", payload["training_entrypoint"] + " has no callable " + payload["train_symbol"])
    state_path = os.path.join(ctx.artifacts_dir, "trained_state.pt")
    force_init(forced_seed)
    miner_train(ctx)
    # Only the runner writes the trained state: anything planted under that name goes first.
    if os.path.lexists(state_path):
        os.unlink(state_path)
    saved = None
    no_learning = False
    if trained_model is not None:
        # The trained state counts too: a model that grew after its last batch is caught here.
        check_cap(trained_model, "trained_state")
        state = {key: value.detach().to("cpu") for key, value in trained_model.state_dict().items()}
        saved_count = sum(_numel(v) for v in state.values() if _isinstance(v, _TensorBase) and v.is_floating_point())
        if saved_count > max_parameters:
            fail("param_cap", "trained_state: the saved state holds " + str(saved_count) + " values, over the cap of "
                 + str(max_parameters), 4)
        torch.save(state, state_path)
        saved = state_path
        no_learning = _first_digest[0] is not None and tensor_digest(trained_model) == _first_digest[0]
    peak_rss = None
    try:
        import resource

        peak_rss = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except Exception:
        pass
    send({"type": "done", "trained_state": saved, "peak_rss_bytes": peak_rss, "no_learning": no_learning})


def run_gate_rank():
    train_path = os.path.join(bundle_dir, payload["training_entrypoint"])
    train_module = import_file(train_path, os.path.splitext(os.path.basename(train_path))[0])
    miner_train = getattr(train_module, payload["train_symbol"], None)
    if not callable(miner_train):
        fail("contract", payload["training_entrypoint"] + " has no callable " + payload["train_symbol"])
    force_init(forced_seed)
    miner_train(ctx)
    digest = tensor_digest(trained_model) if trained_model is not None else None
    send({"type": "gate_rank", "rank": ctx.rank, "world_size": ctx.world_size, "losses": _gate_losses,
          "digest": digest})


def strip_module_prefix(state):
    return {(key[len("module."):] if key.startswith("module.") else key): value for key, value in state.items()}


def chunk_losses(model, chunks):
    model.eval()
    return [mean_loss(model, tensor_of(chunk, model)) for chunk in chunks]


def run_heldout():
    request = receive()
    torch.manual_seed(forced_seed)
    twin = build_checked()
    twin_val = chunk_losses(twin, request["val"])
    del twin
    torch.manual_seed(forced_seed)
    trained = build_checked()
    state = torch.load(payload["trained_state"], map_location="cpu", weights_only=True)
    trained.load_state_dict(strip_module_prefix(state), strict=False)
    send({
        "type": "heldout",
        "twin_val": twin_val,
        "trained_val": chunk_losses(trained, request["val"]),
        "trained_train": chunk_losses(trained, request["train"]),
    })


try:
    {"instantiate": run_instantiate, "train": run_train, "heldout": run_heldout, "gate_rank": run_gate_rank}[mode]()
except SystemExit:
    raise
except BaseException as exc:  # report any miner failure to the orchestrator, then exit non-zero
    import traceback

    traceback.print_exc()
    fail("miner_exception", type(exc).__name__ + ": " + str(exc)[:2000])

# assay's tiny PRISM example: the training half of a two-script bundle.
# The data comes only from ctx.iter_train_batches, which records the model's loss on each batch
# before this loop trains on it (the prequential score).
#
# The scored run goes through torchrun, so the loop carries PRISM's multi-GPU contract: a process
# group when there is more than one rank, a device per rank, a DDP wrap, per-rank data, writes on
# rank 0 only, and a teardown. At world size 1 (the scored default) none of it changes a number.
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from architecture import build_model
from prism_challenge.evaluator.interface import PrismContext

LEARNING_RATE = 0.003
BATCH_SIZE = 8


def train(ctx: PrismContext) -> None:
    distributed = ctx.world_size > 1
    if distributed:
        dist.init_process_group(backend="nccl" if ctx.device.startswith("cuda") else "gloo")
        if ctx.device.startswith("cuda"):
            torch.cuda.set_device(ctx.local_rank)
    model = build_model(ctx).to(ctx.device)
    wrapped = DistributedDataParallel(model) if distributed else model
    optimizer = torch.optim.AdamW(wrapped.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    for batch in ctx.iter_train_batches(model, batch_size=BATCH_SIZE, seq_len=ctx.max_seq_len):
        # Every rank is handed the same batch and trains on its own rows; DDP averages the
        # gradients, so the ranks' parameters stay identical.
        tokens = batch.tokens[ctx.rank :: ctx.world_size]
        logits = wrapped(tokens)
        vocab = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1) % vocab)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(wrapped.parameters(), 1.0)
        optimizer.step()
    if ctx.rank == 0 and ctx.artifacts_dir:
        torch.save(model.state_dict(), ctx.artifacts_dir + "/example_final.pt")
    if distributed:
        dist.barrier()
        dist.destroy_process_group()

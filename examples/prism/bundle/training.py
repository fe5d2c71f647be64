# assay's tiny PRISM example: the training half of a two-script bundle.
# The data comes only from ctx.iter_train_batches, which records the model's loss on each batch
# before this loop trains on it (the prequential score).
import torch
import torch.nn.functional as F

from architecture import build_model
from prism_challenge.evaluator.interface import PrismContext

LEARNING_RATE = 0.003
BATCH_SIZE = 8


def train(ctx: PrismContext) -> None:
    model = build_model(ctx).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    for batch in ctx.iter_train_batches(model, batch_size=BATCH_SIZE, seq_len=ctx.max_seq_len):
        tokens = batch.tokens
        logits = model(tokens)
        vocab = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1) % vocab)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

"""A live `gptkit serve` app on 127.0.0.1 (uvicorn in a thread, on a port the OS picks) over tiny models."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import torch

from gptkit import GPT, ModelConfig, Tokenizer
from gptkit.generation.text import Generator

TEXTS = [
    "今天天气很好，我们去公园散步吧。",
    "The quick brown fox jumps over the lazy dog.",
    "中文和English混在一起也可以。",
    "To be, or not to be, that is the question.",
] * 20


def tiny_tokenizer(chat: bool = True) -> Tokenizer:
    """A small BPE; chat=True gives it gptkit's chat template, as `gptkit finetune chat` does for its models."""
    from gptkit.tokenizer.chat_template import CHAT_TEMPLATE

    tok = Tokenizer.train(TEXTS, vocab_size=400)
    tok.chat_template = CHAT_TEMPLATE if chat else None
    return tok


def random_generator(tok: Tokenizer, block_size: int = 64) -> Generator:
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=32).replace()
    torch.manual_seed(0)
    model = GPT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return Generator(model.eval(), tok)


def position_model(tok: Tokenizer, block_size: int, next_token_at: dict[int, int]) -> GPT:
    """A GPT whose logits depend on the position only: all weights zero but one-hot position embeddings and
    an untied head, so that greedy decoding emits next_token_at[p] after position p."""
    C = block_size
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=C, n_layer=1, n_head=2, n_embd=C, tie_embeddings=False)
    model = GPT(cfg.replace())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("ln"):
                p.zero_()
        model.wpe.weight.copy_(torch.eye(C))
        for pos, token in next_token_at.items():
            model.lm_head.weight[token, pos] = 10.0
    return model.eval()


def cyclic_generator(tok: Tokenizer, text: str, block_size: int = 128) -> Generator:
    """A model whose greedy output at position p is the token seq[p % len(seq)], seq = tok.encode(text): all
    weights zero but one-hot position embeddings and an untied head, so the logits depend on the position
    only. Any long enough answer contains `text` whole."""
    seq = tok.encode(text)
    next_token_at = {pos: seq[(pos + 1) % len(seq)] for pos in range(block_size)}  # position pos predicts pos + 1
    return Generator(position_model(tok, block_size, next_token_at), tok)


@contextlib.contextmanager
def live_server(service, *, api_key: str | None = None) -> Iterator[str]:
    """The base URL (http://127.0.0.1:PORT) of the app over `service`, up until the block ends. Torch runs on one
    intra-op thread meanwhile: the tiny models' steps are faster so, and two OpenMP threads spinning for cores
    that other jobs hold made each step 30x slower on a busy machine (measured)."""
    import uvicorn

    from gptkit.serve.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(service, api_key=api_key), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        torch.set_num_threads(threads_before)

"""Tiny text encoders and text-classification datasets written to disk, built fully offline.

Nothing here is downloaded: the tokenizer is a WordPiece vocabulary we write ourselves, and every word the
datasets use is in it, so no text ever falls back to [UNK] and a tiny model can actually learn the topics.
"""

import json
import random
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

TOPICS = {
    "sports": ["ball", "goal", "team", "coach", "match", "score", "player", "league", "stadium", "referee"],
    "food": ["bread", "cheese", "soup", "pasta", "salad", "cake", "spice", "kitchen", "recipe", "dinner"],
    "tech": ["code", "laptop", "server", "chip", "software", "network", "robot", "cloud", "phone", "data"],
}
FILLER = ["the", "a", "and", "with", "today", "very", "new", "of"]
# Words in the vocabulary that the datasets never use, so tests also see tokens the model was not trained on.
EXTRA = ["cat", "dog", "river", "mountain", "music", "blue", "red", "green", "happy", "slow"]

VOCAB = SPECIAL_TOKENS + sorted({w for words in TOPICS.values() for w in words} | set(FILLER) | set(EXTRA))
TINY_BERT = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                 max_position_embeddings=64)
TINY_DISTILBERT = dict(dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=64)


def save_tokenizer(directory, model_input_names=None):
    """Write vocab.txt and a fast WordPiece tokenizer built from it into directory."""
    from transformers import BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n")
    # Not BertTokenizerFast(vocab_file=...): transformers 5 silently ignores that argument (it takes `vocab`, which
    # 4.x ignores), leaving a 5-token vocabulary where every word is [UNK]. Reading vocab.txt works in both.
    extra = {"model_input_names": model_input_names} if model_input_names else {}
    tokenizer = BertTokenizerFast.from_pretrained(directory, do_lower_case=True, model_max_length=64, **extra)
    assert len(tokenizer) == len(VOCAB), f"tokenizer has {len(tokenizer)} tokens, vocab.txt has {len(VOCAB)}"
    tokenizer.save_pretrained(directory)
    return tokenizer


def save_tiny_bert(directory, seed=0, model_type="bert") -> str:
    """A 2-layer, 16-wide BERT (or DistilBERT with model_type="distilbert") and its tokenizer, saved to directory."""
    import torch
    from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel

    if model_type == "bert":
        config_cls, model_cls, sizes, inputs = BertConfig, BertModel, TINY_BERT, None
    elif model_type == "distilbert":
        # Like distilbert-base-uncased's tokenizer: no token_type_ids, which DistilBertModel.forward does not
        # accept (transformers 4.x raises TypeError on them; 5.x silently drops them).
        config_cls, model_cls, sizes = DistilBertConfig, DistilBertModel, TINY_DISTILBERT
        inputs = ["input_ids", "attention_mask"]
    else:
        raise ValueError(f"unknown model_type {model_type!r}; expected 'bert' or 'distilbert'")
    save_tokenizer(directory, inputs)
    torch.manual_seed(seed)
    model_cls(config_cls(vocab_size=len(VOCAB), **sizes)).save_pretrained(directory)
    return str(directory)


def save_tiny_distilbert(directory, seed=0) -> str:
    """Same as save_tiny_bert but a DistilBERT: a second architecture (different config keys, no token_type_ids)."""
    return save_tiny_bert(directory, seed=seed, model_type="distilbert")


def sentence(rng: random.Random, topic: str) -> str:
    # Mostly topic words with a little filler: easy enough to learn in a few epochs, not a pure lookup.
    length = rng.randint(4, 8)
    return " ".join(rng.choice(TOPICS[topic]) if rng.random() < 0.75 else rng.choice(FILLER) for _ in range(length))


def make_rows(rng: random.Random, count: int, pair: bool) -> tuple[dict, list[str]]:
    topics = list(TOPICS)
    if not pair:
        labels = [i % len(topics) for i in range(count)]  # balanced classes
        rng.shuffle(labels)
        return {"text": [sentence(rng, topics[y]) for y in labels], "label": labels}, topics
    # Same/different topic needs the encoder to compare the two sentences, so it is much harder than the topic
    # task: a from-scratch tiny encoder stays near chance on 60 rows; it needs a few hundred rows and ~20 epochs.
    names = ["same", "different"]
    labels = [i % 2 for i in range(count)]
    rng.shuffle(labels)
    premises, hypotheses = [], []
    for y in labels:
        first = rng.choice(topics)
        second = first if names[y] == "same" else rng.choice([t for t in topics if t != first])
        premises.append(sentence(rng, first))
        hypotheses.append(sentence(rng, second))
    return {"premise": premises, "hypothesis": hypotheses, "label": labels}, names


def write_text_dataset(root, kind="parquet", pair=False, seed=0) -> str:
    """A 3-class topic dataset (or 2-class same/different-topic pairs) as train/test files for load_dataset(root).

    parquet keeps a ClassLabel feature (names stored in the file's metadata); csv stores label names as strings;
    json stores labels as plain ints, so the three kinds exercise the three ways label names can (not) arrive.
    """
    import datasets

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for split, count in (("train", 60), ("test", 24)):
        columns, names = make_rows(rng, count, pair)
        if kind == "parquet":
            features = datasets.Features(
                {**{c: datasets.Value("string") for c in columns if c != "label"},
                 "label": datasets.ClassLabel(names=names)}
            )
            datasets.Dataset.from_dict(columns, features=features).to_parquet(str(root / f"{split}.parquet"))
        elif kind == "csv":
            columns = {**columns, "label": [names[y] for y in columns["label"]]}
            datasets.Dataset.from_dict(columns).to_csv(str(root / f"{split}.csv"), index=False)
        elif kind == "json":
            with open(root / f"{split}.jsonl", "w") as f:
                for row in zip(*columns.values()):
                    f.write(json.dumps(dict(zip(columns, row))) + "\n")
        else:
            raise ValueError(f"unknown kind {kind!r}; expected 'parquet', 'csv' or 'json'")
    return str(root)

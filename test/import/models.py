"""Small random-init models of the common architectures, for the import
tests: name -> (module, example inputs). Shapes are small so that each
compiles in seconds."""
import torch

SEQ = 16


def _ids(vocab, seed=0, batch=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, vocab, (batch, SEQ), generator=g)


def _mask(batch=1):
    m = torch.ones(batch, SEQ, dtype=torch.long)
    m[0, SEQ - 5:] = 0  # padding at the end of the first sequence
    return m


class HiddenStates(torch.nn.Module):
    """A transformers model called with (input_ids, attention_mask),
    returning last_hidden_state."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class Gpt2Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids).logits


class RnnClassifier(torch.nn.Module):
    def __init__(self, cell, vocab=50, emb=16, hidden=24, classes=3):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, emb)
        self.rnn = getattr(torch.nn, cell)(emb, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, classes)

    def forward(self, input_ids):
        out, _ = self.rnn(self.embed(input_ids))
        return self.head(out[:, -1])


class ConvClassifier(torch.nn.Module):
    def __init__(self, vocab=50, emb=16, channels=24, classes=3):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, emb)
        self.conv = torch.nn.Conv1d(emb, channels, kernel_size=3, padding=1)
        self.head = torch.nn.Linear(channels, classes)

    def forward(self, input_ids):
        x = self.embed(input_ids).transpose(1, 2)      # [B, emb, S]
        x = torch.relu(self.conv(x)).amax(dim=2)       # max over time
        return self.head(x)


def make(name):
    torch.manual_seed(0)
    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=64, vocab_size=100)
    if name == "bert":
        from transformers import BertConfig, BertModel
        return HiddenStates(BertModel(BertConfig(**tiny)).eval()), (_ids(100), _mask())
    if name == "distilbert":
        from transformers import DistilBertConfig, DistilBertModel
        cfg = DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                               max_position_embeddings=64)
        return HiddenStates(DistilBertModel(cfg).eval()), (_ids(100), _mask())
    if name == "roberta":
        from transformers import RobertaConfig, RobertaModel
        cfg = RobertaConfig(**{**tiny, "max_position_embeddings": 64 + 2}, pad_token_id=1)
        return HiddenStates(RobertaModel(cfg).eval()), (_ids(100), _mask())
    if name == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel
        cfg = GPT2Config(vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=2)
        return Gpt2Logits(GPT2LMHeadModel(cfg).eval()), (_ids(100),)
    if name in ("lstm", "gru"):
        return RnnClassifier(name.upper()).eval(), (_ids(50),)
    if name == "conv1d":
        return ConvClassifier().eval(), (_ids(50),)
    raise KeyError(name)


NAMES = ["bert", "distilbert", "roberta", "gpt2", "lstm", "gru", "conv1d"]

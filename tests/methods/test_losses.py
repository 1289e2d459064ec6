import pytest
import torch
from torch import nn
from transformers import AutoModel

from grpo_rm.config import ModelArguments, ObjectiveArguments
from grpo_rm.methods import CrossEntropyMethod, FrozenPolicy, GrpoRmMethod, build_method
from grpo_rm.objective import grpo_rm_loss
from grpo_rm.tasks import build_model


def test_build_method_passes_settings():
    method = build_method("grpo-rm", ObjectiveArguments(epsilon=0.1, beta=0.05, reward="probability-gap").settings())
    assert isinstance(method, GrpoRmMethod) and method.needs_old_policy and method.needs_reference_policy
    logits, old, ref = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    targets = torch.tensor([0, 1, 2, 0])
    expected, _ = grpo_rm_loss(logits, old, targets, epsilon=0.1, beta=0.05, reward="probability-gap", ref_logits=ref)
    assert method(logits, targets, old, ref).loss.item() == expected.item()
    ce = build_method("ce", ObjectiveArguments(method="ce").settings())
    assert isinstance(ce, CrossEntropyMethod) and not ce.needs_old_policy


def test_build_method_passes_the_objective_variants():
    settings = dict(epsilon_high=0.28, scale_rewards="batch", group_weighting="old_policy", reward="margin",
                    uniformity_weight=0.5)
    method = build_method("grpo-rm", ObjectiveArguments(**settings).settings(), ignore_index=255)
    assert (method.epsilon_high, method.scale_rewards, method.group_weighting, method.reward) == (
        0.28, "batch", "old_policy", "margin")
    torch.manual_seed(0)
    logits, old = torch.randn(6, 4), torch.randn(6, 4)
    targets = torch.tensor([0, 1, 255, 3, 2, 0])
    expected, _ = grpo_rm_loss(logits, old, targets, ignore_index=255, **settings)
    assert method(logits, targets, old).loss.item() == expected.item()
    default, _ = grpo_rm_loss(logits, old, targets, ignore_index=255)
    assert expected.item() != default.item()


def test_frozen_policy_has_no_gradient_runs_in_eval_and_refreshes():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    policy = FrozenPolicy(model)
    assert not policy.model.training
    assert not any(p.requires_grad for p in policy.model.parameters())
    x = torch.randn(8, 3)
    first = policy(x)
    torch.testing.assert_close(first, policy(x))  # eval mode: dropout off
    assert not first.requires_grad and not first.is_inference()

    with torch.no_grad():
        model[0].weight.add_(1.0)
    torch.testing.assert_close(policy(x), first)  # not refreshed yet
    policy.refresh(model)
    torch.testing.assert_close(policy(x), model.eval()(x))


def test_frozen_policy_batchnorm_uses_batch_statistics_without_updating():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).train()
    model[1].running_mean.fill_(5.0)  # far from the batch statistics
    policy = FrozenPolicy(model)
    x = torch.randn(16, 3)
    torch.testing.assert_close(policy(x), model(x))  # the ratio is 1 right after a refresh
    assert torch.all(policy.model[1].running_mean == 5.0)
    assert not policy.model[0].training  # everything else stays in eval mode


# train_last_n_blocks=1 on the tiny 2-block encoders: the embeddings and block 0 are the frozen prefix. The
# segmentation head reads 3 layers, two of them (the embeddings' and block 0's outputs) from the prefix.
SPLIT_MODELS = [("tiny_dinov2", "image-classification"), ("tiny_dinov2", "image-segmentation"),
                ("tiny_bert", "text-classification")]


def model_and_inputs(request, fixture, task):
    model = build_model(ModelArguments(model_name_or_path=request.getfixturevalue(fixture), task=task,
                                       train_last_n_blocks=1, seg_num_layers=3), ["a", "b", "c"])
    if model.modality == "text":
        return model, model.processor(["the ball and the goal", "soup with bread", "code on a new laptop"])
    return model, {"pixel_values": torch.randn(3, 3, 16, 16)}


@pytest.mark.parametrize("fixture, task", SPLIT_MODELS)
def test_a_policy_sharing_the_frozen_prefix_gives_the_logits_of_a_full_copy(request, fixture, task):
    model, inputs = model_and_inputs(request, fixture, task)
    model.eval()  # BERT's dropout off, as a full copy runs the frozen blocks: then the shared prefix is its own
    assert model.frozen_part == "prefix"
    shared, full = FrozenPolicy(model, shares="prefix"), FrozenPolicy(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):  # the policies stay the starting model while the model trains
        logits, state = model(**inputs, return_frozen_output=True)
        assert torch.equal(shared(frozen_output=state), full(**inputs))
        (-logits.log_softmax(1)[:, 0].mean()).backward()
        optimizer.step()
        optimizer.zero_grad()
    _, state = model(**inputs, return_frozen_output=True)
    before = full(**inputs)
    shared.refresh(model)
    full.refresh(model)
    assert not torch.equal(full(**inputs), before)
    assert torch.equal(shared(frozen_output=state), full(**inputs))


@pytest.mark.parametrize("fixture, task", SPLIT_MODELS[::2])
def test_a_policy_sharing_the_frozen_prefix_holds_only_the_trainable_part(request, fixture, task):
    model, _ = model_and_inputs(request, fixture, task)
    transformer = AutoModel.from_pretrained(request.getfixturevalue(fixture))
    blocks = transformer.encoder.layer  # the layout of both tiny encoders
    tail = [blocks[1], model.head] + ([transformer.layernorm] if model.modality == "image" else [])
    size = sum(p.numel() for module in tail for p in module.parameters())
    policy = FrozenPolicy(model, shares="prefix")
    assert sum(p.numel() for p in policy.model.parameters()) == size
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == size
    assert size < sum(p.numel() for p in FrozenPolicy(model).model.parameters()) / 2

import torch

from grpo_rm.representation.probes import accuracy, fit_softmax_regression, knn_predict, sweep_softmax_regression


def test_knn_exact_neighbours_and_weighted_votes():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    query = torch.tensor([[1.0, 0.05], [0.05, 1.0], [-1.0, 0.1]])
    predictions = knn_predict(train, labels, query, num_classes=3, k_values=[1, 2], temperature=0.1)
    assert predictions[1].tolist() == [0, 1, 2]
    assert predictions[2].tolist() == [0, 1, 2]


def test_knn_temperature_weighting_can_beat_majority():
    # Two far neighbours of class 1 against one very close neighbour of class 0.
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.2]])
    cos = torch.nn.functional.normalize(query, dim=-1) @ torch.nn.functional.normalize(train, dim=-1).T
    sharp = knn_predict(train, labels, query, 2, k_values=[3], temperature=0.05)[3]
    flat = knn_predict(train, labels, query, 2, k_values=[3], temperature=100.0)[3]
    # By hand: class-0 weight exp(cos0/T) against exp(cos1/T) + exp(cos2/T).
    w = lambda t: (torch.exp(cos[0, 0] / t), torch.exp(cos[0, 1] / t) + torch.exp(cos[0, 2] / t))  # noqa: E731
    assert sharp.item() == int(w(0.05)[1] > w(0.05)[0]) == 0
    assert flat.item() == int(w(100.0)[1] > w(100.0)[0]) == 1


def test_knn_k_larger_than_train_set_uses_all():
    train, labels = torch.randn(4, 3), torch.tensor([0, 1, 1, 1])
    predictions = knn_predict(train, labels, train, 2, k_values=[50], temperature=1000.0)
    assert predictions[50].tolist() == [1, 1, 1, 1]


def test_softmax_regression_separates_separable_data():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]])
    labels = torch.arange(3).repeat_interleave(30)
    features = centres[labels] + 0.5 * torch.randn(90, 3, generator=generator) + 10.0
    model = fit_softmax_regression(features, labels, 3, learning_rate=0.1, epochs=30)
    assert accuracy(model.predict(features), labels) == 1.0


def test_sweep_selects_on_validation_and_reports_test():
    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(2).repeat(40)
    features = torch.randn(80, 5, generator=generator)
    features[:, 0] += 3 * labels
    split = lambda a, b: (features[a:b], labels[a:b])  # noqa: E731
    result = sweep_softmax_regression(split(0, 40), split(40, 60), split(60, 80), 2,
                                      learning_rates=[1e-4, 1e-1], weight_decays=[0.0], epochs=20)
    assert len(result["grid"]) == 2
    best = max(result["grid"], key=lambda g: g["validation_accuracy"])
    assert result["selected"] == best and result["test_accuracy"] == best["test_accuracy"]

"""Tower metrics: per-question accuracy / balanced accuracy with baselines, retrieval with identical texts."""

import numpy as np
import pytest
import torch

from gzllava.tower.metrics import balanced_accuracy, classification_table, distinct_text_retrieval, retrieval
from gzllava.tower.questions import HeadSchema

SCHEMA = HeadSchema.parse("disk-edge-on")


def test_balanced_accuracy_is_mean_recall():
    labels = np.array([0, 0, 0, 1])
    assert balanced_accuracy(labels, np.zeros(4, int)) == 0.5  # majority: all of class 0, none of class 1
    assert balanced_accuracy(labels, np.array([0, 0, 1, 1])) == pytest.approx((2 / 3 + 1) / 2)


def test_classification_table_confident_subset_and_baselines():
    shares = np.array([[0.9, 0.1], [0.85, 0.15], [0.6, 0.4], [0.1, 0.9]], np.float32)
    reached = np.ones((4, 1), bool)
    scores = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)  # wrong on galaxy 1 only
    table = classification_table(scores, shares, reached, SCHEMA, prior_labels={"disk-edge-on": 0})
    row = table["disk-edge-on"]
    assert row["all"]["n"] == 4 and row["all"]["accuracy"] == 0.75
    assert row["confident"]["n"] == 3  # 0.6 is not confident
    assert row["confident"]["accuracy"] == pytest.approx(2 / 3)
    assert row["confident"]["balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert row["all"]["majority_accuracy"] == 0.75 and row["all"]["majority_balanced_accuracy"] == 0.5
    assert row["chance"] == 0.5


def test_classification_table_roc_auc_ranks_by_score_whatever_the_argmax():
    shares = np.array([[0.9, 0.1], [0.85, 0.15], [0.6, 0.4], [0.1, 0.9]], np.float32)
    reached = np.ones((4, 1), bool)
    biased = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]], np.float32)  # always "yes", yet ordered
    row = classification_table(biased, shares, reached, SCHEMA)["disk-edge-on"]
    assert row["all"]["balanced_accuracy"] == 0.5 and row["all"]["auc"] == 1.0
    scores = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)  # ties count one half
    row = classification_table(scores, shares, reached, SCHEMA)["disk-edge-on"]
    assert row["all"]["auc"] == pytest.approx(5 / 6)  # each answer: 2 pairs won, 1 tied, of 3
    assert row["confident"]["auc"] == pytest.approx(0.75)  # galaxies 0, 1, 3: 1 won, 1 tied, of 2
    one_answer = classification_table(scores[:2], shares[:2], reached[:2], SCHEMA)["disk-edge-on"]
    assert one_answer["all"]["auc"] is None  # only "yes" among the labels: nothing to rank against


def test_head_probabilities_are_a_softmax_per_question_and_give_the_vote_cross_entropy():
    schema = HeadSchema.parse("smooth-or-featured,disk-edge-on")  # 3 + 2 answers
    logits = torch.tensor([[2.0, 0.0, -1.0, 5.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]])
    probs = schema.probabilities(logits).numpy()
    assert probs[:, :3].sum(1) == pytest.approx([1, 1]) and probs[:, 3:].sum(1) == pytest.approx([1, 1])
    # galaxy 1's edge-on shares do not depend on its large smooth-or-featured logits (one softmax over all 5 would)
    assert probs[1, 3:] == pytest.approx([0.5, 0.5])
    shares = np.array([[0.9, 0.1, 0.0, 0.2, 0.8], [0.5, 0.5, 0.0, 0.0, 0.0]], np.float32)
    reached = np.array([[True, True], [True, False]])
    table = classification_table(probs, shares, reached, schema, probabilities=True)
    expected_smooth = np.mean([-(shares[i, :3] * np.log(probs[i, :3])).sum() for i in range(2)])
    assert table["smooth-or-featured"]["all"]["cross_entropy"] == pytest.approx(expected_smooth, rel=1e-5)
    edge = table["disk-edge-on"]["all"]  # galaxy 1 did not reach it: galaxy 0 alone
    assert edge["n"] == 1 and edge["cross_entropy"] == pytest.approx(-(0.2 * np.log(probs[0, 3]) + 0.8 * np.log(probs[0, 4])), rel=1e-5)
    assert "cross_entropy" not in classification_table(probs, shares, reached, schema)["disk-edge-on"]["all"]


def test_unreached_questions_are_left_out():
    shares = np.array([[0.9, 0.1], [0.0, 0.0]], np.float32)
    reached = np.array([[True], [False]])
    table = classification_table(shares, shares, reached, SCHEMA)
    assert table["disk-edge-on"]["all"]["n"] == 1


def test_retrieval_perfect_embeddings_and_identical_texts():
    embeds = torch.eye(20)
    texts = [f"text {i}" for i in range(20)]
    result = retrieval(embeds, embeds, texts)
    assert result["image_to_text"]["top_1%"] == 1.0 and result["distinct_texts"] == 20
    # two groups of identical texts: strict ranking counts the 9 twins against each image, lenient does not
    texts = ["smooth"] * 10 + ["disk"] * 10
    text_embeds = torch.cat([torch.tensor([[1.0, 0.0]]).repeat(10, 1), torch.tensor([[0.0, 1.0]]).repeat(10, 1)])
    image_embeds = text_embeds + 0.01 * torch.randn(20, 2)
    result = retrieval(image_embeds, text_embeds, texts)
    assert result["image_to_text"]["top_10%"] < 1.0
    lenient = distinct_text_retrieval((image_embeds @ text_embeds.t()).numpy(), texts)
    assert lenient["candidates"] == 2 and lenient["top_10%"] == 1.0 and lenient["random"]["top_10%"] == 0.5


def test_eight_view_image_features_do_not_depend_on_how_the_galaxy_lies():
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from gzllava.tower.metrics import image_features

    torch.manual_seed(0)

    class Tower(torch.nn.Module):  # image_features reads .vision_model and .visual_projection of a dual encoder
        def __init__(self):
            super().__init__()
            self.vision_model = CLIPVisionModel(CLIPVisionConfig(image_size=16, patch_size=4, hidden_size=32,
                                                                 intermediate_size=64, num_hidden_layers=2,
                                                                 num_attention_heads=2)).eval()
            self.visual_projection = torch.nn.Linear(32, 8, bias=False)

    tower, pixels = Tower(), torch.randn(3, 3, 16, 16)
    moved = [torch.rot90(pixels, 1, (-2, -1)), torch.rot90(pixels, 2, (-2, -1)), pixels.flip(-1), pixels.flip(-2)]
    pooled, embeds = image_features(tower, [pixels], views=8)
    assert pooled.shape == (3, 32) and embeds.shape == (3, 8)
    for other in moved:
        moved_pooled, moved_embeds = image_features(tower, [other], views=8)
        torch.testing.assert_close(moved_pooled, pooled)
        torch.testing.assert_close(moved_embeds, embeds)
    single, _ = image_features(tower, [pixels])
    turned, _ = image_features(tower, [moved[0]])
    assert not torch.allclose(single, turned, atol=1e-4)  # one view alone does depend on it

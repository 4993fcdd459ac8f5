"""
Classification metrics from a confusion matrix, as a learner would compute them by hand, and its picture.
Used by analysis/evaluate.py for the ViT (and by any classifier that yields predictions and labels).
"""

import torch


def confusion_matrix(predictions, labels, n_classes):
    """(n_classes, n_classes) int64: entry [i, j] counts the examples of true class i predicted as j."""
    flat = labels.long() * n_classes + predictions.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).view(n_classes, n_classes)


def classification_report(matrix):
    """
    Per class: precision = TP / predicted as the class (a column sum), recall = TP / truly the class
    (a row sum: this is also the class's accuracy), F1 = their harmonic mean; 0 where a denominator is 0.
    Macro averages weigh every class equally, however many examples it has.
    """
    matrix = matrix.double()
    true_positives = matrix.diagonal()
    precision = true_positives / matrix.sum(dim=0).clamp(min=1)
    recall = true_positives / matrix.sum(dim=1).clamp(min=1)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), torch.zeros_like(precision))
    return {
        "accuracy": (true_positives.sum() / matrix.sum()).item(),
        "precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
        "macro_precision": precision.mean().item(), "macro_recall": recall.mean().item(), "macro_f1": f1.mean().item(),
    }


def plot_confusion_matrix(matrix, class_names, title):
    """A figure of the row-normalised matrix (each true class sums to 1), with the counts written in
    when there are few enough classes to read them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(class_names)
    rates = matrix.double() / matrix.sum(dim=1, keepdim=True).clamp(min=1)
    size = min(12, 2 + 0.5 * n)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ticks = range(n) if n <= 20 else range(0, n, max(1, n // 20))
    ax.set_xticks(list(ticks), [class_names[i] for i in ticks], rotation=90 if n > 10 else 45, ha="right" if n <= 10 else "center")
    ax.set_yticks(list(ticks), [class_names[i] for i in ticks])
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return fig

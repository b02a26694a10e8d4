using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Cllm.Training;

/// <summary>The CLLM losses. Logits are [B, T, V]; masks and labels are [B, T].</summary>
public static class Losses
{
    public const long Ignore = -100;

    /// <summary>Next-token cross-entropy: logits at t predict labels at t (already shifted); <see cref="Ignore"/> is skipped.</summary>
    public static Tensor Autoregressive(Tensor logits, Tensor labels, double labelSmoothing = 0)
    {
        var vocab = logits.shape[^1];
        return F.cross_entropy(logits.reshape(-1, vocab).to(float32), labels.reshape(-1), ignore_index: Ignore,
            label_smoothing: labelSmoothing);
    }

    /// <summary>
    /// Forward KL from the target's distribution to the student's per position (the reference's soft
    /// cross-entropy minus the target's entropy: the same gradient, and exactly zero when the student
    /// already agrees), averaged over the positions where <paramref name="mask"/> is true.
    /// The target is detached here: no gradient ever reaches it.
    /// </summary>
    public static Tensor Consistency(Tensor studentLogits, Tensor targetLogits, Tensor mask)
    {
        var targetLog = targetLogits.detach().to(float32).log_softmax(-1);
        var perPosition = (targetLog.exp() * (targetLog - studentLogits.to(float32).log_softmax(-1))).sum(-1);
        var weights = mask.to(float32);
        return (perPosition * weights).sum() / weights.sum().clamp_min(1);
    }
}

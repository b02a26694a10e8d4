using System.Text;
using Microsoft.ML.Tokenizers;

namespace Cllm.Text;

/// <summary>
/// tokenizer.json normalizers NFC/NFKC/NFD/NFKD (Qwen2 uses NFC). Microsoft.ML.Tokenizers 2.0.1 has no
/// public Unicode normalizer, so this adapts <see cref="string.Normalize(NormalizationForm)"/>.
/// </summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : Normalizer
{
    public NormalizationForm Form { get; } = form;

    public override string Normalize(string original) => original.Normalize(Form);

    public override string Normalize(ReadOnlySpan<char> original) => original.ToString().Normalize(Form);
}

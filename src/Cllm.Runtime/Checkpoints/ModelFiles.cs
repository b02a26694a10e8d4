using System.Text.Json.Nodes;
using Cllm.Model;
using Cllm.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cllm.Checkpoints;

/// <summary>
/// A model folder in Hugging Face layout (config.json + safetensors with HF tensor names) to and from a
/// <see cref="Transformer"/>. Fused projections are concatenated on load and split on save, so files we
/// write are read by Hugging Face tools and files they write are read here; checkpoints that store them fused
/// (Phi-3's qkv_proj and gate_up_proj) keep their own names both ways.
/// </summary>
public static class ModelFiles
{
    public const string ConfigFile = "config.json";
    public const string GenerationConfigFile = "generation_config.json";

    /// <summary>Loads config.json and the weights of <paramref name="modelDirectory"/>.</summary>
    public static Transformer Load(string modelDirectory, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        TorchNative.EnsureLoaded();
        if (File.Exists(modelDirectory))
            throw new DirectoryNotFoundException($"'{modelDirectory}' is a file; give the model folder (config.json and weights) instead.");
        if (!Directory.Exists(modelDirectory))
            throw new DirectoryNotFoundException($"Model folder not found: {modelDirectory}");
        try
        {
            using var entries = Directory.EnumerateFileSystemEntries(modelDirectory).GetEnumerator();
            entries.MoveNext();
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new UnauthorizedAccessException($"Model folder '{modelDirectory}' cannot be read ({e.Message}); check its permissions.", e);
        }
        var config = ModelConfig.Load(Path.Combine(modelDirectory, ConfigFile));
        device ??= CPU;
        var model = new Transformer(config, dtype, device);
        try
        {
            using var scope = NewDisposeScope();
            ReadInto(model, modelDirectory);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    /// <summary>Writes config.json, generation_config.json and model.safetensors (HF tensor names).</summary>
    public static void Save(Transformer model, string modelDirectory, long maxShardBytes = long.MaxValue)
    {
        Directory.CreateDirectory(modelDirectory);
        using (var scope = NewDisposeScope())
            HfCheckpoint.WriteWeights(modelDirectory, ToHuggingFace(model), maxShardBytes);
        var config = model.Config;
        var dtypeName = model.DType switch
        {
            ScalarType.BFloat16 => "bfloat16",
            ScalarType.Float16 => "float16",
            _ => "float32",
        };
        var configJson = JsonNode.Parse(config.ToJson())!.AsObject();
        configJson["torch_dtype"] = dtypeName;
        WriteAtomically(Path.Combine(modelDirectory, ConfigFile), configJson.ToJsonString(new() { WriteIndented = true }));
        var generation = new JsonObject { ["do_sample"] = false };
        if (config.BosTokenId is { } bos) generation["bos_token_id"] = bos;
        if (config.EosTokenIds.Count > 0) generation["eos_token_id"] = config.EosTokenIds.Count == 1
            ? config.EosTokenIds[0]
            : new JsonArray(config.EosTokenIds.Select(x => (JsonNode)x).ToArray());
        WriteAtomically(Path.Combine(modelDirectory, GenerationConfigFile), generation.ToJsonString(new() { WriteIndented = true }));
    }

    /// <summary>The model's weights under Hugging Face names, fused projections split (views, no copies).</summary>
    public static Dictionary<string, Tensor> ToHuggingFace(Transformer model)
    {
        var c = model.Config;
        var p = model.state_dict();
        int q = c.NumHeads * c.HeadDim, kv = c.NumKvHeads * c.HeadDim;
        var hf = new Dictionary<string, Tensor>
        {
            ["model.embed_tokens.weight"] = p["tok_embeddings.weight"],
            ["model.norm.weight"] = p["norm.weight"],
        };
        if (!c.TieWordEmbeddings) hf["lm_head.weight"] = p["output.weight"];
        for (var i = 0; i < c.NumLayers; i++)
        {
            var (ours, theirs) = ($"layers.{i}.", $"model.layers.{i}.");
            var wqkv = p[ours + "attention.wqkv.weight"];
            var w13 = p[ours + "feed_forward.w13.weight"];
            if (c.FusedCheckpointTensors)
            {
                hf[theirs + "self_attn.qkv_proj.weight"] = wqkv;
                hf[theirs + "mlp.gate_up_proj.weight"] = w13; // gate rows first, then up: the order we hold
            }
            else
            {
                hf[theirs + "self_attn.q_proj.weight"] = wqkv.narrow(0, 0, q);
                hf[theirs + "self_attn.k_proj.weight"] = wqkv.narrow(0, q, kv);
                hf[theirs + "self_attn.v_proj.weight"] = wqkv.narrow(0, q + kv, kv);
                hf[theirs + "mlp.gate_proj.weight"] = w13.narrow(0, 0, c.IntermediateSize);
                hf[theirs + "mlp.up_proj.weight"] = w13.narrow(0, c.IntermediateSize, c.IntermediateSize);
            }
            if (c.AttentionBias)
            {
                var bias = p[ours + "attention.wqkv.bias"];
                hf[theirs + "self_attn.q_proj.bias"] = bias.narrow(0, 0, q);
                hf[theirs + "self_attn.k_proj.bias"] = bias.narrow(0, q, kv);
                hf[theirs + "self_attn.v_proj.bias"] = bias.narrow(0, q + kv, kv);
            }
            hf[theirs + "self_attn.o_proj.weight"] = p[ours + "attention.wo.weight"];
            if (c.QkNorm)
            {
                hf[theirs + "self_attn.q_norm.weight"] = p[ours + "attention.q_norm.weight"];
                hf[theirs + "self_attn.k_norm.weight"] = p[ours + "attention.k_norm.weight"];
            }
            hf[theirs + "mlp.down_proj.weight"] = p[ours + "feed_forward.w2.weight"];
            hf[theirs + "input_layernorm.weight"] = p[ours + "attention_norm.weight"];
            if (c.IsGemma)
            {
                // Gemma's post_attention_layernorm norms the attention output; the MLP's input norm is pre_feedforward.
                hf[theirs + "post_attention_layernorm.weight"] = p[ours + "post_attention_norm.weight"];
                hf[theirs + "pre_feedforward_layernorm.weight"] = p[ours + "ffn_norm.weight"];
                hf[theirs + "post_feedforward_layernorm.weight"] = p[ours + "post_ffn_norm.weight"];
            }
            else hf[theirs + "post_attention_layernorm.weight"] = p[ours + "ffn_norm.weight"];
        }
        return hf;
    }

    /// <summary>
    /// Reads the folder's weights straight into the model's parameters (fused projections are filled part by part
    /// through views), checking that every tensor is there and that nothing is left over. No second copy of the
    /// weights is ever held: peak memory while loading is the model itself.
    /// </summary>
    static void ReadInto(Transformer model, string modelDirectory)
    {
        var c = model.Config;
        var targets = ToHuggingFace(model);
        var filled = new HashSet<string>(StringComparer.Ordinal);
        var stored = HfCheckpoint.ReadWeightsInto(modelDirectory, name =>
        {
            if (!targets.TryGetValue(name, out var target)) return null;
            filled.Add(name);
            return target;
        });
        var missing = targets.Keys.Where(k => !filled.Contains(k)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{modelDirectory}: tensor '{missing[0]}' is missing from the checkpoint" +
                (missing.Count > 1 ? $" (and {missing.Count - 1} more)" : "") + ". Check that config.json matches the weights.");
        // Old Llama checkpoints carry their RoPE frequencies (we compute our own); some tied checkpoints store a copy of the head.
        var extra = stored.Where(k => !targets.ContainsKey(k) && !k.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal)
            && !(c.TieWordEmbeddings && k == "lm_head.weight")).Order(StringComparer.Ordinal).ToList();
        if (extra.Count > 0)
            throw new InvalidDataException(
                $"{modelDirectory}: the checkpoint holds tensors this {c.Architecture} config does not use: {string.Join(", ", extra.Take(5))}" +
                (extra.Count > 5 ? $" (and {extra.Count - 5} more)" : "") + ". Check that config.json matches the weights.");
    }

    static void WriteAtomically(string path, string text)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}

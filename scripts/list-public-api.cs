// Lists the public types of the four library packages (for each package's README.md):
//   dotnet run scripts/list-public-api.cs
// Prints, per assembly and namespace, each public type with its kind and its public members' names.
#:property PublishAot=false
#:property EnableTrimAnalyzer=false
#:project ../src/Cllm.SemanticKernel/Cllm.SemanticKernel.csproj
#:project ../src/Cllm.Training/Cllm.Training.csproj
using System.Reflection;

Assembly[] assemblies =
[
    typeof(Cllm.CllmEngine).Assembly, typeof(Cllm.Training.Trainer).Assembly,
    typeof(Cllm.Extensions.AI.CllmChatClient).Assembly, typeof(Microsoft.SemanticKernel.CllmKernelBuilderExtensions).Assembly,
];
const BindingFlags Declared = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
foreach (var assembly in assemblies)
{
    var types = assembly.GetExportedTypes().Where(t => !t.IsNested).ToList();
    Console.WriteLine($"## {assembly.GetName().Name} ({types.Count} public types)");
    foreach (var ns in types.GroupBy(t => t.Namespace).OrderBy(g => g.Key))
    {
        Console.WriteLine($"\n### {ns.Key}\n");
        foreach (var t in ns.OrderBy(t => t.Name))
        {
            string kind = t.IsEnum ? "enum" : t.IsInterface ? "interface" : t.IsValueType ? "struct"
                : t.IsAbstract && t.IsSealed ? "static class" : t.GetMethod("<Clone>$") is not null ? "record" : "class";
            var members = t.IsEnum ? Enum.GetNames(t)
                : t.GetMembers(Declared).Where(m => m is not MethodInfo { IsSpecialName: true } && m.Name is not ("<Clone>$" or "Equals"
                    or "GetHashCode" or "ToString" or "Deconstruct" or "PrintMembers" or "EqualityContract"))
                    .Select(m => m is ConstructorInfo ? "new" : m.Name).Distinct().ToArray();
            Console.WriteLine($"- `{Name(t)}` ({kind}): {string.Join(", ", members)}");
        }
    }

    Console.WriteLine();
}

static string Name(Type t) => t.IsGenericType ? t.Name[..t.Name.IndexOf('`')] + "<" + string.Join(", ", t.GetGenericArguments().Select(a => a.Name)) + ">" : t.Name;

using Cllm.Text;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Cllm.Training.Data;

public sealed record Customer(int Id, string Name, string City);

public sealed record Product(int Id, string Name, string Category, int Price);

public sealed record Order(int Id, int CustomerId, int ProductId, int Quantity, string Status, string OrderDate);

/// <summary>
/// One canonical SQL query shape, e.g. <c>SELECT COUNT(*) FROM customers WHERE city = '{city}'</c>. The same
/// template both writes the gold SQL (<see cref="Format"/>) and recognises it (<see cref="StoreDatabase.Execute"/>),
/// so the generator and the database cannot drift apart.
/// </summary>
public sealed class SqlForm
{
    private readonly Func<StoreDatabase, Func<string, string>, IEnumerable<object?[]>> _run;

    internal SqlForm(string id, string template, Func<StoreDatabase, Func<string, string>, IEnumerable<object?[]>> run)
    {
        Id = id;
        Template = template;
        _run = run;
        // Quoted slots take any text without a quote, bare slots an integer; spacing and a final ';' are free.
        string pattern = Regex.Escape(template).Replace("\\ ", "\\s+");
        pattern = Regex.Replace(pattern, @"'\\\{(\w+)}'", "'(?<$1>[^']*)'");
        pattern = Regex.Replace(pattern, @"\\\{(\w+)}", "(?<$1>-?\\d+)");
        Pattern = new Regex($"^\\s*{pattern}\\s*;?\\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    }

    public string Id { get; }

    public string Template { get; }

    internal Regex Pattern { get; }

    public string Format(IReadOnlyDictionary<string, string> slots) => Fill(Template, slots);

    /// <summary>Replaces each <c>{name}</c> in <paramref name="template"/> with its slot value.</summary>
    internal static string Fill(string template, IReadOnlyDictionary<string, string> slots) =>
        Regex.Replace(template, @"\{(\w+)}", m => slots[m.Groups[1].Value]);

    internal IReadOnlyList<IReadOnlyList<object?>> Run(StoreDatabase db, Match match) =>
        _run(db, name => match.Groups[name].Value).Select(row => (IReadOnlyList<object?>)row).ToList();
}

/// <summary>
/// The agent demo's store: customers, products and orders as in-memory records, the same for a given seed
/// on every machine. <see cref="SchemaSql"/> and <see cref="InsertStatements"/> build an identical SQLite
/// file; <see cref="Execute"/> answers the generator's canonical queries in C#, which is how the training
/// data gets tool results without a database engine.
/// </summary>
public sealed class StoreDatabase
{
    public const int DefaultSeed = 2024;

    public static IReadOnlyList<string> Cities { get; } = ["Oslo", "Lima", "Cairo", "Dublin", "Austin", "Denver", "Lisbon", "Nairobi", "Perth", "Seoul"];

    public static IReadOnlyList<string> Categories { get; } = ["kitchen", "garden", "office", "toy", "sports", "music"];

    public static IReadOnlyList<string> Statuses { get; } = ["pending", "shipped", "delivered"];

    // Five two-word products per category, in Categories order. No word repeats, so no name is part of another.
    private static readonly string[] ProductNames =
    [
        "Steel Kettle", "Glass Bowl", "Bamboo Spoon", "Chef Knife", "Tea Towel",
        "Clay Pot", "Hand Trowel", "Rose Seeds", "Bird Feeder", "Watering Can",
        "Gel Pen", "Desk Lamp", "Paper Tray", "Sticky Notes", "Ring Binder",
        "Rubber Duck", "Puzzle Cube", "Spinning Top", "Tin Robot", "Wooden Train",
        "Yoga Mat", "Jump Rope", "Tennis Ball", "Bike Helmet", "Swim Goggles",
        "Guitar Pick", "Drum Sticks", "Violin Bow", "Tuning Fork", "Harmonica Case",
    ];

    private static readonly string[] FirstNames = ["Ana", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas"];
    private static readonly string[] LastNames = ["Silva", "Novak", "Chen", "Okafor", "Berg", "Rossi", "Kaur", "Haddad"];

    /// <summary>The short schema the prompts show (column names only; types are in <see cref="SchemaSql"/>).</summary>
    public const string CompactSchema =
        "customers(id, name, city)\nproducts(id, name, category, price)\norders(id, customer_id, product_id, quantity, status, order_date)";

    public const string SchemaSql = """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL);
        CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, price INTEGER NOT NULL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL, status TEXT NOT NULL, order_date TEXT NOT NULL);
        """;

    // Joins written once so every form that uses them spells them the same way.
    private const string OrdersCustomers = "FROM orders o JOIN customers c ON o.customer_id = c.id";
    private const string OrdersProducts = "FROM orders o JOIN products p ON o.product_id = p.id";

    /// <summary>
    /// The canonical query forms. Results follow SQLite: COUNT gives a long, SUM over no rows gives null,
    /// AVG gives a double, and unordered rows come in id order (a plain table scan's order).
    /// </summary>
    public static IReadOnlyList<SqlForm> Forms { get; } =
    [
        new("customers_in_city_count", "SELECT COUNT(*) FROM customers WHERE city = '{city}'",
            (db, s) => [[(long)db.Customers.Count(c => c.City == s("city"))]]),
        new("customers_in_city", "SELECT name FROM customers WHERE city = '{city}'",
            (db, s) => db.Customers.Where(c => c.City == s("city")).Select(c => new object?[] { c.Name })),
        new("category_under_price", "SELECT name FROM products WHERE category = '{category}' AND price < {price}",
            (db, s) => db.Products.Where(p => p.Category == s("category") && p.Price < Int(s("price"))).Select(p => new object?[] { p.Name })),
        new("top_products_by_price", "SELECT name, price FROM products ORDER BY price DESC LIMIT {n}",
            (db, s) => db.Products.OrderByDescending(p => p.Price).Take(Int(s("n"))).Select(p => new object?[] { p.Name, p.Price })),
        new("cheapest_in_category", "SELECT name, price FROM products WHERE category = '{category}' ORDER BY price LIMIT 1",
            (db, s) => db.Products.Where(p => p.Category == s("category")).OrderBy(p => p.Price).Take(1).Select(p => new object?[] { p.Name, p.Price })),
        new("product_price", "SELECT price FROM products WHERE name = '{product}'",
            (db, s) => db.Products.Where(p => p.Name == s("product")).Select(p => new object?[] { p.Price })),
        new("category_avg_price", "SELECT AVG(price) FROM products WHERE category = '{category}'",
            (db, s) => [[Avg(db.Products.Where(p => p.Category == s("category")).Select(p => p.Price))]]),
        new("customer_order_count", $"SELECT COUNT(*) {OrdersCustomers} WHERE c.name = '{{customer}}'",
            (db, s) => [[(long)db.OrdersOf(s("customer")).Count()]]),
        new("customer_quantity", $"SELECT SUM(o.quantity) {OrdersCustomers} WHERE c.name = '{{customer}}'",
            (db, s) => [[Sum(db.OrdersOf(s("customer")).Select(o => (long)o.Quantity))]]),
        new("customer_status_orders", $"SELECT o.id {OrdersCustomers} WHERE c.name = '{{customer}}' AND o.status = '{{status}}'",
            (db, s) => db.OrdersOf(s("customer")).Where(o => o.Status == s("status")).Select(o => new object?[] { (long)o.Id })),
        new("city_status_count", $"SELECT COUNT(*) {OrdersCustomers} WHERE c.city = '{{city}}' AND o.status = '{{status}}'",
            (db, s) => [[(long)db.Orders.Count(o => db.CustomerOf(o).City == s("city") && o.Status == s("status"))]]),
        new("product_units", $"SELECT SUM(o.quantity) {OrdersProducts} WHERE p.name = '{{product}}'",
            (db, s) => [[Sum(db.Orders.Where(o => db.ProductOf(o).Name == s("product")).Select(o => (long)o.Quantity))]]),
        new("category_revenue", $"SELECT SUM(o.quantity * p.price) {OrdersProducts} WHERE p.category = '{{category}}'",
            (db, s) => [[Sum(db.Orders.Where(o => db.ProductOf(o).Category == s("category")).Select(o => (long)o.Quantity * db.ProductOf(o).Price))]]),
        new("orders_in_month", "SELECT COUNT(*) FROM orders WHERE order_date LIKE '2024-{month}-%'",
            (db, s) => [[(long)db.Orders.Count(o => o.OrderDate.StartsWith($"2024-{s("month")}-", StringComparison.Ordinal))]]),
    ];

    public StoreDatabase(int seed = DefaultSeed)
    {
        var rng = new Random(seed);
        // Every city gets at least two customers and every customer and product at least one order, so the
        // generator's counts and sums are rarely zero and never null.
        Customers = FirstNames.SelectMany(f => LastNames.Select(l => $"{f} {l}")).OrderBy(_ => rng.Next()).Take(40)
            .Select((name, i) => new Customer(i + 1, name, Cities[i < 20 ? i % Cities.Count : rng.Next(Cities.Count)])).ToList();
        var prices = Enumerable.Range(3, 148).OrderBy(_ => rng.Next()).Take(ProductNames.Length).ToList(); // distinct: ORDER BY price has no ties
        Products = ProductNames.Select((name, i) => new Product(i + 1, name, Categories[i / 5], prices[i])).ToList();
        var start = new DateOnly(2024, 1, 1);
        Orders = Enumerable.Range(0, 200)
            .Select(i => (Customer: i < Customers.Count ? i + 1 : rng.Next(1, Customers.Count + 1),
                Product: i < Products.Count ? i + 1 : rng.Next(1, Products.Count + 1),
                Quantity: rng.Next(1, 6),
                Status: rng.Next(10) switch { < 2 => "pending", < 5 => "shipped", _ => "delivered" },
                Date: start.AddDays(rng.Next(366))))
            .ToList() // draw everything before sorting, so the draws do not depend on the sort
            .OrderBy(o => o.Date).ThenBy(o => o.Customer)
            .Select((o, i) => new Order(i + 1, o.Customer, o.Product, o.Quantity, o.Status, o.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)))
            .ToList();
    }

    public IReadOnlyList<Customer> Customers { get; }

    public IReadOnlyList<Product> Products { get; }

    public IReadOnlyList<Order> Orders { get; }

    public IEnumerable<string> InsertStatements()
    {
        static string Q(string s) => "'" + s.Replace("'", "''") + "'";
        foreach (var c in Customers)
            yield return $"INSERT INTO customers (id, name, city) VALUES ({c.Id}, {Q(c.Name)}, {Q(c.City)});";
        foreach (var p in Products)
            yield return $"INSERT INTO products (id, name, category, price) VALUES ({p.Id}, {Q(p.Name)}, {Q(p.Category)}, {p.Price});";
        foreach (var o in Orders)
            yield return $"INSERT INTO orders (id, customer_id, product_id, quantity, status, order_date) VALUES ({o.Id}, {o.CustomerId}, {o.ProductId}, {o.Quantity}, {Q(o.Status)}, {Q(o.OrderDate)});";
    }

    /// <summary>Writes the store as a SQLite file at <paramref name="path"/> (replacing any file there).</summary>
    public void WriteSqlite(string path)
    {
        if (File.Exists(path)) File.Delete(path);
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Mode=ReadWriteCreate;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        // One transaction: without it every INSERT is its own synced commit.
        command.CommandText = "BEGIN;\n" + SchemaSql + "\n" + string.Join("\n", InsertStatements()) + "\nCOMMIT;";
        command.ExecuteNonQuery();
    }

    /// <summary>Runs a query in one of the canonical <see cref="Forms"/>; null for any other SQL.</summary>
    public IReadOnlyList<IReadOnlyList<object?>>? Execute(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        foreach (var form in Forms)
        {
            var match = form.Pattern.Match(sql);
            if (match.Success) return form.Run(this, match);
        }

        return null;
    }

    public static SqlForm Form(string id) => Forms.First(f => f.Id == id);

    public Customer CustomerOf(Order o) => Customers[o.CustomerId - 1];

    public Product ProductOf(Order o) => Products[o.ProductId - 1];

    private IEnumerable<Order> OrdersOf(string customerName) => Orders.Where(o => CustomerOf(o).Name == customerName);

    // The pattern only admits digits, but an absurdly long number must not throw.
    private static int Int(string s) => int.TryParse(s, CultureInfo.InvariantCulture, out int v) ? v : s.StartsWith('-') ? int.MinValue : int.MaxValue;

    private static long? Sum(IEnumerable<long> values) => values.Any() ? values.Sum() : null;

    private static double? Avg(IEnumerable<int> values) => values.Any() ? values.Average() : null;
}

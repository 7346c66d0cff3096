extension CodeHighlighter {
    /// The language a fence's info string names (its first word, any case), or nil.
    static func language(named name: String) -> Language? {
        switch name {
        case "swift": return swift
        case "python", "py", "python3": return python
        case "javascript", "js", "jsx", "mjs", "cjs", "typescript", "ts", "tsx": return javascript
        case "json", "jsonc", "json5", "jsonl": return json
        case "sh", "bash", "shell", "zsh", "console", "shell-session", "ksh": return shell
        case "go", "golang": return go
        case "rust", "rs": return rust
        case "sql", "postgres", "postgresql", "mysql", "sqlite", "plsql": return sql
        case "yaml", "yml": return yaml
        case "c", "h", "cpp", "c++", "cc", "hpp", "java", "kotlin", "kt", "cs", "csharp", "scala", "dart":
            return cFamily
        default: return nil
        }
    }

    private static func words(_ s: String) -> Set<String> { Set(s.split(separator: " ").map(String.init)) }
    private static let slashes: [[UInt8]] = [Array("//".utf8)]
    private static let cComment = (open: Array("/*".utf8), close: Array("*/".utf8))

    static let swift = Language(
        keywords: words(
            "associatedtype actor async await break case catch class continue default defer deinit do else enum "
                + "extension fallthrough false fileprivate for func guard if import in init inout internal is let "
                + "nil nonisolated open operator private protocol public repeat rethrows return self Self some any "
                + "static struct subscript super switch throw throws true try typealias var where while mutating "
                + "override final lazy weak unowned convenience required consume borrowing consuming sending"),
        lineComments: slashes, blockComment: cComment, quotes: [0x22], capitalizedTypes: true)

    static let python = Language(
        keywords: words(
            "False None True and as assert async await break class continue def del elif else except finally for "
                + "from global if import in is lambda nonlocal not or pass raise return try while with yield match "
                + "case self print len range"),
        lineComments: [[0x23]], quotes: [0x22, 0x27], tripleQuotes: true)

    static let javascript = Language(
        keywords: words(
            "break case catch class const continue debugger default delete do else export extends false finally "
                + "for function if import in instanceof let new null return super switch this throw true try typeof "
                + "var void while with yield async await of undefined interface type enum implements private public "
                + "protected readonly static abstract declare namespace as from keyof never unknown any number "
                + "string boolean"),
        lineComments: slashes, blockComment: cComment, quotes: [0x22, 0x27, 0x60], multiLineQuotes: [0x60],
        capitalizedTypes: true)

    static let json = Language(keywords: words("true false null"), quotes: [0x22], keys: true)

    static let shell = Language(
        keywords: words(
            "if then else elif fi for while until do done case esac function in return exit export local "
                + "readonly echo cd set unset source alias shift trap break continue"),
        lineComments: [[0x23]], quotes: [0x22, 0x27], shellVariables: true)

    static let go = Language(
        keywords: words(
            "break case chan const continue default defer else fallthrough for func go goto if import interface "
                + "map package range return select struct switch type var nil true false iota make new len cap "
                + "append panic recover error string int int64 float64 bool byte rune"),
        lineComments: slashes, blockComment: cComment, quotes: [0x22, 0x27, 0x60], multiLineQuotes: [0x60],
        capitalizedTypes: true)

    static let rust = Language(
        keywords: words(
            "as async await break const continue crate dyn else enum extern false fn for if impl in let loop "
                + "match mod move mut pub ref return self Self static struct super trait true type unsafe use where "
                + "while Some None Ok Err i32 i64 u8 u32 u64 usize f64 bool str String Vec Option Result"),
        lineComments: slashes, blockComment: cComment, quotes: [0x22], capitalizedTypes: true)

    static let sql = Language(
        keywords: words(
            "select from where and or not insert into values update set delete create table drop alter add "
                + "column index primary key foreign references join left right inner outer full on group by order "
                + "having limit offset as distinct union all null is in like between case when then else end "
                + "exists count sum avg min max integer int text varchar boolean default unique begin commit "
                + "rollback view with returning asc desc true false"),
        lineComments: [Array("--".utf8)], blockComment: cComment, quotes: [0x27, 0x22], caseInsensitive: true)

    static let yaml = Language(
        keywords: words("true false null yes no on off ~"), lineComments: [[0x23]], quotes: [0x22, 0x27],
        keys: true)

    static let cFamily = Language(
        keywords: words(
            "auto break case char const continue default do double else enum extern float for goto if int long "
                + "register return short signed sizeof static struct switch typedef union unsigned void volatile "
                + "while class public private protected new delete this true false null nullptr namespace using "
                + "template typename virtual override final import package extends implements interface fun val var "
                + "object when is in try catch throw throws bool boolean string"),
        lineComments: slashes, blockComment: cComment, quotes: [0x22, 0x27], capitalizedTypes: true)
}

/// "1 turn", "2 turns": a count with its noun in the right number, for every message that
/// shows one.
/// - Parameters:
///   - n: the count.
///   - singular: the noun for one.
///   - plural: the noun for any other count (default: `singular` + "s").
package func counted(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
    "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
}

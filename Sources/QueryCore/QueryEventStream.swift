/// The events of a streamed query (``QueryClient/stream(messages:functionSpec:options:logger:)``):
/// text and argument deltas, retry notices and usage as they happen, then `.completed(result)`.
///
/// Iterating throws ``QueryError`` only. Cancelling the iterating task, or dropping the stream,
/// cancels the request; the iteration then ends without `.completed`.
public struct QueryEventStream: AsyncSequence, Sendable {
    public typealias Element = QueryEvent
    public typealias Failure = QueryError

    private let base: AsyncThrowingStream<QueryEvent, Error>

    /// `base` must finish with a ``QueryError`` or not at all.
    init(_ base: AsyncThrowingStream<QueryEvent, Error>) { self.base = base }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<QueryEvent, Error>.AsyncIterator

        public mutating func next() async throws(QueryError) -> QueryEvent? {
            do {
                return try await base.next()
            } catch let e as QueryError {
                throw e
            } catch {
                throw QueryError.transport(kind: .other, message: "\(error)")  // not reached: see init
            }
        }
    }
}

import CTerminal
import Foundation

/// Cancels the turn in flight when Ctrl-C arrives. The C handler writes a byte to a pipe; a
/// thread reads it and cancels the task registered here.
final class InterruptHub: @unchecked Sendable {
    static let shared = InterruptHub()
    private let lock = NSLock()
    private var cancelCurrent: (() -> Void)?
    private var idleHandler: (() -> Void)?

    func start(fd: Int32, whenIdle: @escaping () -> Void) {
        idleHandler = whenIdle
        let t = Thread {
            var byte: UInt8 = 0
            while true {
                let n = read(fd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                InterruptHub.shared.fire()
            }
        }
        t.name = "promptline-interrupts"
        t.start()
    }

    private func fire() {
        let action: (() -> Void)? = lock.withLock { cancelCurrent ?? idleHandler }
        action?()
    }

    /// Runs `body` with `cancel` registered as the Ctrl-C action. Meanwhile the terminal does
    /// not echo what is typed, so keys typed ahead are not drawn over the spinner or progress
    /// line: they stay queued, and the next prompt shows them.
    func whileRunning<T>(cancel: @escaping () -> Void, _ body: () async -> T) async -> T {
        lock.withLock { cancelCurrent = cancel }
        let hidden = ct_echo_suspend(STDIN_FILENO) == 1
        defer {
            if hidden { ct_echo_resume(STDIN_FILENO) }
            lock.withLock { cancelCurrent = nil }
        }
        return await body()
    }
}

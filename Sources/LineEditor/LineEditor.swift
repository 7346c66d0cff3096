import CLibEdit
import CTerminal
import Foundation

public enum EditorMode: String, Sendable { case emacs, vi }

public enum ReadResult: Equatable, Sendable {
    case line(String)
    case eof, interrupted
}

/// Line editing on a terminal through libedit; plain line reading when stdin (or stdout) is not
/// a terminal or `TERM=dumb`.
///
/// Interactive `readLine` always returns with the cursor at the start of a fresh line (libedit
/// echoes the newline of an accepted line; Ctrl-C and Ctrl-D get one printed here).
/// One instance, used from one thread at a time.
public final class LineEditor {
    public struct Configuration {
        public var programName: String
        public var historyPath: String?
        public var historySize: Int
        public var mode: EditorMode

        public init(
            programName: String = "promptline", historyPath: String? = nil, historySize: Int = 1000,
            mode: EditorMode = .emacs
        ) {
            self.programName = programName
            self.historyPath = historyPath
            self.historySize = historySize
            self.mode = mode
        }
    }

    public let configuration: Configuration
    public private(set) var mode: EditorMode
    /// Tab: gets the text left of the cursor, returns replacements for its last word (the text
    /// after the last whitespace).
    public var completer: ((_ lineBeforeCursor: String) -> [String])?

    private var el: OpaquePointer?  // EditLine *; nil in plain mode
    private var hist: OpaquePointer?  // History *
    private var promptBuffer: UnsafeMutablePointer<CChar>?  // what the prompt callback hands libedit
    private var plain: PlainReader
    /// Where characters are read from: the terminal reopened non-blocking (see `openInput`).
    private let inputFD: Int32

    public var isInteractive: Bool { el != nil }

    public init(configuration: Configuration) {
        self.configuration = configuration
        mode = configuration.mode
        inputFD = Self.openInput()
        plain = PlainReader(fd: inputFD)
        // Before el_init, or libedit drops every non-ASCII character. With no locale in the
        // environment (LANG unset: the C locale) libedit cannot convert the prompt's `›` and
        // crashed at the first prompt; UTF-8 is then taken, as the terminal's text is.
        if setlocale(LC_CTYPE, "") == nil || String(cString: nl_langinfo(nl_item(CODESET))) != "UTF-8" {
            _ = setlocale(LC_CTYPE, "C.UTF-8")
        }
        let term = ProcessInfo.processInfo.environment["TERM"] ?? ""
        guard ct_isatty(STDIN_FILENO) == 1, ct_isatty(STDOUT_FILENO) == 1, term != "dumb",
            let el = le_init(configuration.programName)
        else { return }
        self.el = el
        le_set_clientdata(el, Unmanaged.passUnretained(self).toOpaque())
        le_set_prompt(
            el,
            { el in
                guard let el, let editor = LineEditor.from(el) else { return nil }
                return editor.promptBuffer
            }, 1)
        le_set_signal(el, 1)
        le_set_getcfn(
            el,
            { el, out in
                guard let el, let out, let editor = LineEditor.from(el) else { return -1 }
                return editor.readChar(el, into: out)
            })
        le_add_function(
            el, "promptline-complete", "Complete the word before the cursor",
            { el, _ in
                guard let el, let editor = LineEditor.from(el) else { return UInt8(CC_ERROR) }
                return editor.complete(el)
            })
        le_add_function(
            el, "promptline-paste", "Insert a bracketed paste verbatim",
            { el, _ in
                guard let el else { return UInt8(CC_ERROR) }
                return LineEditor.insertPaste(el)
            })
        // A stray paste-end marker (e.g. after Ctrl-C mid-paste) is swallowed silently.
        le_add_function(el, "promptline-ignore", "Ignore this key sequence", { _, _ in UInt8(CC_NORM) })

        if let h = history_init() {
            hist = h
            le_history_setsize(h, Int32(clamping: configuration.historySize))
            le_history_setunique(h, 1)
            le_set_hist(el, h)
            if let path = configuration.historyPath, FileManager.default.fileExists(atPath: path) {
                le_history_load(h, path)
            }
        }
        setMode(configuration.mode)
    }

    deinit {
        if let el { el_end(el) }  // also puts the tty back in cooked mode
        if let hist { history_end(hist) }
        free(promptBuffer)
        if inputFD != STDIN_FILENO { close(inputFD) }
    }

    /// A terminal on stdin is reopened by name with O_NONBLOCK: a description of our own, so the
    /// flag does not leak to the shell sharing stdin. Reads must not block after poll() said
    /// "readable": a Ctrl-C flushes the tty's input queue in between, and a blocking read would
    /// then hang with the interrupt already spent. Pipes and files keep fd 0.
    private static func openInput() -> Int32 {
        guard ct_isatty(STDIN_FILENO) == 1, let name = ttyname(STDIN_FILENO) else { return STDIN_FILENO }
        let fd = open(name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        return fd >= 0 ? fd : STDIN_FILENO
    }

    fileprivate static func from(_ el: OpaquePointer) -> LineEditor? {
        le_get_clientdata(el).map { Unmanaged<LineEditor>.fromOpaque($0).takeUnretainedValue() }
    }

    // MARK: - Reading

    /// Reads a line; `initial` (one line) is put in the buffer first, to edit (ignored when
    /// input is not a terminal: the next line read is the answer).
    public func readLine(prompt: String, initial: String? = nil) -> ReadResult {
        guard let el else { return plain.readLine(prompt: prompt) }
        free(promptBuffer)
        promptBuffer = strdup(Self.markEscapes(prompt))
        if let initial, !initial.isEmpty, !initial.contains("\n") { el_push(el, initial) }

        // Without our handler libedit would re-raise SIGINT into SIG_DFL and kill the process.
        ct_sigint_ensure_installed()
        ct_wait_reset()  // a Ctrl-C from before the prompt belonged to earlier work
        ct_sigint_push_reader()
        ct_bracketed_paste(STDOUT_FILENO, 1)
        var count: Int32 = 0
        let raw = el_gets(el, &count)
        let savedErrno = errno
        ct_bracketed_paste(STDOUT_FILENO, 0)
        ct_sigint_pop_reader()

        guard let raw, count > 0 else {
            el_reset(el)  // cooked tty, empty line buffer: ready to prompt again
            Self.writeOut("\n")  // leave the half-typed line (or the ^D) on screen
            return count == -1 && savedErrno == EINTR ? .interrupted : .eof
        }
        var line = String(cString: raw)
        if line.hasSuffix("\n") { line.removeLast() }
        return .line(line)
    }

    /// Wraps ANSI escape sequences in \u{1} so libedit prints them without counting their width.
    static func markEscapes(_ prompt: String) -> String {
        guard prompt.contains("\u{1B}") else { return prompt }
        var out = String.UnicodeScalarView()
        var scalars = prompt.unicodeScalars.makeIterator()
        while let c = scalars.next() {
            guard c == "\u{1B}" else {
                out.append(c)
                continue
            }
            out.append("\u{1}")
            out.append(c)
            // CSI: ESC [ params… final byte in @…~ ; other escapes: ESC + one character.
            if let n = scalars.next() {
                out.append(n)
                if n == "[" {
                    while let p = scalars.next() {
                        out.append(p)
                        if (0x40...0x7E).contains(p.value) { break }
                    }
                }
            }
            out.append("\u{1}")
        }
        return String(out)
    }

    // MARK: - History

    /// Adds a line to the history (consecutive duplicates are dropped) and saves the history
    /// file. Does nothing in plain mode, so piped input never lands in the history.
    public func addHistory(_ line: String) {
        guard let hist, el != nil, !line.isEmpty else { return }
        le_history_enter(hist, line)
        guard let path = configuration.historyPath else { return }
        let dir = (path as NSString).deletingLastPathComponent
        // The caller owns the folder's permissions (promptline makes it private at start-up).
        if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
            try? FileManager.default.createDirectory(
                atPath: dir, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        }
        // Written whole to a new 0600 file, then renamed over the old one: a crash leaves the old
        // or the new history, never half of one, and a symlink planted at `path` is replaced,
        // not followed.
        let tmp =
            "\(dir.isEmpty ? "." : dir)/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        close(fd)
        if le_history_save(hist, tmp) < 0 || rename(tmp, path) != 0 { unlink(tmp) }
    }

    // MARK: - Mode and key bindings

    public func setMode(_ mode: EditorMode) {
        self.mode = mode
        guard let el else { return }
        le_set_editor(el, mode.rawValue)  // resets the keymaps, so bind again
        le_bind(el, "^I", "promptline-complete", 0)
        for alternate: Int32 in [0, 1] {  // vi: insert and command keymaps
            le_bind(el, "\u{1B}[200~", "promptline-paste", alternate)
            le_bind(el, "\u{1B}[201~", "promptline-ignore", alternate)
        }
        if mode == .vi {
            // See `loneEscape`: in insert mode it leaves for command mode; in command mode it
            // only beeps, as Esc does in vi.
            le_bind(el, Self.loneEscapeKey, "vi-command-mode", 0)
            le_bind(el, Self.loneEscapeKey, "ed-unassigned", 1)
        }
    }

    /// What readChar hands libedit for an Esc typed alone in vi mode. libedit binds Esc as the
    /// first character of the arrow-key (and paste) sequences, so an Esc on its own waits for
    /// the rest of a sequence and is swallowed with the key after it: Esc never reached
    /// vi-command-mode, and `0x` went in as text. A terminal sends a sequence in one write, so an
    /// Esc with nothing after it within `escapeWait` ms was a key press. U+009B (a C1 control
    /// no one types) stands in for it, bound to vi-command-mode.
    static let loneEscape: wchar_t = 0x9B
    static let loneEscapeKey = "\u{9B}"
    static let escapeWait: Int32 = 50

    // MARK: - Reading characters

    /// libedit's read-a-character hook (EL_GETCFN), replacing its blocking read(). It waits on
    /// stdin and on CTerminal's wake pipe, so a Ctrl-C that arrives while libedit is busy between
    /// two reads still ends el_gets; with the built-in read the EINTR would hit nothing and the
    /// Ctrl-C would be lost (seen through a pty when ^C follows typed text closely).
    /// Returns 1 with a character, 0 at end of input, -1 with errno set (EINTR for Ctrl-C).
    private func readChar(_ el: OpaquePointer, into out: UnsafeMutablePointer<wchar_t>) -> Int32 {
        out.pointee = 0
        // el_gets has just installed libedit's signal handlers (EL_SIGNAL). Keep them for
        // TSTP/CONT/TERM/HUP/WINCH (tty restored), but take SIGINT back: libedit's handler
        // re-raises with kill(0, SIGINT), which also hits a parent script in our process group,
        // and the wake pipe already ends el_gets. el_gets' exit restores what it saved: ours.
        ct_sigint_reclaim()
        var pending: [CChar] = []  // bytes of a multibyte character read so far
        while true {
            switch ct_wait_input(inputFD) {
            case Int32(CT_WAIT_INTERRUPTED):
                errno = EINTR
                return -1
            case Int32(CT_WAIT_RESIZED):
                el_resize(el)
                continue
            case Int32(CT_WAIT_READY):
                break
            default:
                return -1
            }
            var byte: CChar = 0
            let n = read(inputFD, &byte, 1)
            if n == 0 { return 0 }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }  // EAGAIN: input flushed by ^C
                return -1
            }
            pending.append(byte)
            while !pending.isEmpty {
                var state = mbstate_t()
                var wc: wchar_t = 0
                let r = pending.withUnsafeBufferPointer { mbrtowc(&wc, $0.baseAddress, $0.count, &state) }
                if r == -2 {  // incomplete character: read another byte
                    if pending.count >= 16 {
                        errno = EILSEQ
                        return -1
                    }
                    break
                } else if r == -1 {  // invalid: as libedit, keep only the last byte and retry it
                    pending = pending.count > 1 ? [pending[pending.count - 1]] : []
                } else {
                    out.pointee =
                        wc == 0x1B && mode == .vi && !inputFollows(within: Self.escapeWait) ? Self.loneEscape : wc
                    return 1
                }
            }
        }
    }

    /// Whether a byte can be read from the input within `ms` milliseconds.
    private func inputFollows(within ms: Int32) -> Bool {
        var p = pollfd(fd: inputFD, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, ms) > 0 && p.revents & Int16(POLLIN) != 0
    }

    // MARK: - Bracketed paste

    /// Bound to ESC[200~: reads everything up to ESC[201~ raw and inserts it as text, newlines
    /// included, so a multi-line paste becomes one line result.
    private static func insertPaste(_ el: OpaquePointer) -> UInt8 {
        let end: [wchar_t] = [0x1B, 0x5B, 0x32, 0x30, 0x31, 0x7E]  // ESC [ 2 0 1 ~
        var text: [wchar_t] = []
        var c: wchar_t = 0
        while true {
            let r = el_wgetc(el, &c)
            if r != 1 {
                // Ctrl-C mid-paste: a bound function cannot end el_gets, so hand the interrupt
                // back to the next read, which does (the half paste is dropped with the line).
                if r == -1 && errno == EINTR { ct_wait_repost_interrupt() }
                break
            }
            text.append(c)
            if text.count >= end.count, text.suffix(end.count).elementsEqual(end) {
                text.removeLast(end.count)
                break
            }
        }
        // Terminals send CR for pasted line breaks: make them \n (CRLF → one \n).
        var cleaned: [wchar_t] = []
        cleaned.reserveCapacity(text.count + 1)
        for (i, ch) in text.enumerated() {
            if ch == 0x0D {
                if i + 1 < text.count, text[i + 1] == 0x0A { continue }
                cleaned.append(0x0A)
            } else if ch != 0 {
                cleaned.append(ch)
            }
        }
        guard !cleaned.isEmpty else { return UInt8(CC_NORM) }
        cleaned.append(0)
        return el_winsertstr(el, cleaned) == 0 ? UInt8(CC_REFRESH) : UInt8(CC_ERROR)
    }

    // MARK: - Completion

    private func complete(_ el: OpaquePointer) -> UInt8 {
        guard let completer else { return UInt8(CC_ERROR) }
        let info = el_line(el).pointee
        let bytes = UnsafeRawBufferPointer(start: info.buffer, count: info.cursor - info.buffer)
        let before = String(decoding: bytes, as: UTF8.self)
        let word = String(before.reversed().prefix { !$0.isWhitespace }.reversed())
        let candidates = completer(before)
        guard let first = candidates.first else { return UInt8(CC_ERROR) }  // beep

        if candidates.count == 1 {
            // A unique completion is finished with a space, so the next word can follow at once
            // (a folder keeps its trailing slash instead, to go on into it).
            el_deletestr(el, Int32(word.unicodeScalars.count))
            el_insertstr(el, first.hasSuffix("/") ? first : first + " ")
            return UInt8(CC_REFRESH)
        }
        let replacement = Self.commonPrefix(candidates)
        if replacement.count > word.count {
            // el_deletestr counts characters as libedit stores them: Unicode scalars.
            el_deletestr(el, Int32(word.unicodeScalars.count))
            el_insertstr(el, replacement)
            return UInt8(CC_REFRESH)
        }
        // Nothing more to insert: list the candidates below the line and draw the prompt again.
        le_write_out(el, "\n" + Self.columns(candidates, width: Self.terminalWidth() ?? 80))
        return UInt8(CC_REDISPLAY)
    }

    static func commonPrefix(_ strings: [String]) -> String {
        guard var prefix = strings.first.map(Array.init) else { return "" }
        for s in strings.dropFirst() {
            let chars = Array(s)
            var n = 0
            while n < prefix.count, n < chars.count, prefix[n] == chars[n] { n += 1 }
            prefix.removeSubrange(n...)
        }
        return String(prefix)
    }

    /// `ls`-style: down the columns, then across; every row ends with a newline.
    static func columns(_ items: [String], width: Int) -> String {
        let colWidth = (items.map(\.count).max() ?? 0) + 2
        let cols = max(1, width / colWidth)
        let rows = (items.count + cols - 1) / cols
        var out = ""
        for r in 0..<rows {
            var line = ""
            for c in 0..<cols {
                let i = c * rows + r
                guard i < items.count else { break }
                let item = items[i]
                let isLast = (c + 1) * rows + r >= items.count
                line += isLast ? item : item + String(repeating: " ", count: colWidth - item.count)
            }
            out += line + "\n"
        }
        return out
    }

    // MARK: - Interrupts and terminal

    /// Installs the SIGINT handler (no SA_RESTART) and makes the calling thread the one a
    /// Ctrl-C is forwarded to. `readLine` also registers its own thread while it blocks.
    public static func installInterruptHandler() {
        ct_sigint_install()
    }

    /// Read end of the self-pipe: one byte per Ctrl-C, for cancelling work in flight.
    /// -1 before `installInterruptHandler()`.
    public static var interruptFileDescriptor: Int32 { ct_sigint_fd() }

    /// Ctrl-Cs seen since the handler was installed (or the last reset).

    /// Columns of the terminal on stdout (or stderr, stdin); nil when none is a terminal.
    public static func terminalWidth() -> Int? {
        for fd in [STDOUT_FILENO, STDERR_FILENO, STDIN_FILENO] {
            let w = ct_terminal_width(fd)
            if w > 0 { return Int(w) }
        }
        return nil
    }

    static func writeOut(_ s: String, fd: Int32 = STDOUT_FILENO) {
        var s = s
        s.withUTF8 { buf in _ = ct_write_all(fd, buf.baseAddress, buf.count) }
    }
}

/// Lines from stdin without libedit. Not getline(): it cannot tell a Ctrl-C from end of input.
/// Buffered read(2) after waiting on stdin and the wake pipe, so a Ctrl-C is never missed.
private struct PlainReader {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var atEOF = false

    init(fd: Int32) { self.fd = fd }

    mutating func readLine(prompt: String) -> ReadResult {
        // A prompt only helps someone typing (e.g. TERM=dumb in an Emacs shell buffer).
        if !prompt.isEmpty, ct_isatty(STDIN_FILENO) == 1, ct_isatty(STDOUT_FILENO) == 1 {
            LineEditor.writeOut(prompt)
        }
        ct_sigint_push_reader()
        defer { ct_sigint_pop_reader() }
        if buffer.firstIndex(of: 0x0A) == nil && !atEOF { ct_wait_reset() }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                if line.last == 0x0D { line.removeLast() }
                return .line(String(decoding: line, as: UTF8.self))
            }
            if atEOF {
                guard !buffer.isEmpty else { return .eof }
                defer { buffer.removeAll() }  // a last line without a newline
                return .line(String(decoding: buffer, as: UTF8.self))
            }
            switch ct_wait_input(fd) {
            case Int32(CT_WAIT_INTERRUPTED): return .interrupted  // buffered bytes stay for the next call
            case Int32(CT_WAIT_RESIZED): continue
            default: break  // ready, or an error the read below reports
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer.append(contentsOf: chunk[..<n])
            } else if n == 0 {
                atEOF = true
            } else if errno == EINTR || errno == EAGAIN {
                continue  // the wait above reports a Ctrl-C
            } else {
                atEOF = true
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which, on what, and the errno text.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var subject: String
    public var code: Int32

    public init(_ call: String, _ subject: String, code: Int32) {
        self.call = call
        self.subject = subject
        self.code = code
    }

    public var description: String {
        "\(call) \(subject): \(String(cString: strerror(code))) (errno \(code))"
    }

    /// Throws when `result` is a negative errno (the shim's convention).
    @discardableResult
    static func check(_ result: Int32, _ call: String, _ subject: String) throws(SystemError) -> Int32 {
        if result < 0 { throw SystemError(call, subject, code: -result) }
        return result
    }
}

/// Up to 40 bytes of header options, stored inline.
///
/// IPv4 and TCP both cap their options at 40 bytes (a 4-bit header length
/// counts 32-bit words, 15 × 4 − 20). Keeping them inline rather than in an
/// array means parsing a header with options never allocates, and a header is
/// still a plain value that can be rebuilt byte for byte.
public struct OptionBytes: Hashable, Sendable {
    public static let capacity = 40

    @usableFromInline
    var storage: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
    @usableFromInline
    var length: UInt8 = 0

    /// No options.
    @inlinable
    public init() {}

    /// Copies `bytes`.
    /// - Precondition: `bytes.count <= 40`.
    public init(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= Self.capacity, "\(bytes.count) bytes of options exceed the 40-byte limit")
        length = UInt8(bytes.count)
        withUnsafeMutableBytes(of: &storage) { $0.copy(bytes, to: 0) }
    }

    /// Copies `bytes`.
    /// - Precondition: `bytes.count <= 40`.
    public init(_ bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { OptionBytes($0) }
    }

    /// Calls `body` with the option bytes.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var copy = storage
        let count = Int(length)
        return try Swift.withUnsafeBytes(of: &copy) { (raw) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: raw[0..<count]))
        }
    }

    // Bytes past `length` are always zero, so comparing the whole storage is
    // comparing the options.
    @inlinable
    public static func == (lhs: OptionBytes, rhs: OptionBytes) -> Bool {
        lhs.length == rhs.length && lhs.storage.0 == rhs.storage.0 && lhs.storage.1 == rhs.storage.1
            && lhs.storage.2 == rhs.storage.2 && lhs.storage.3 == rhs.storage.3 && lhs.storage.4 == rhs.storage.4
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(length)
        hasher.combine(storage.0)
        hasher.combine(storage.1)
        hasher.combine(storage.2)
        hasher.combine(storage.3)
        hasher.combine(storage.4)
    }
}

extension OptionBytes: RandomAccessCollection {
    public typealias Index = Int
    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { Int(length) }

    @inlinable
    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < Int(length), "option byte \(position) out of 0..<\(length)")
        var copy = storage
        return Swift.withUnsafeBytes(of: &copy) { $0[position] }
    }
}

extension OptionBytes: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: UInt8...) { self.init(elements) }
}

extension OptionBytes: CustomStringConvertible {
    public var description: String {
        let digits: [Character] = Array("0123456789abcdef")
        var text = ""
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xF)])
        }
        return "[\(text)]"
    }
}

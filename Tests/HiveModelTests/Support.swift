import Foundation
import HiveModel
import HivePacket

// Literal helpers: tests spell addresses as users do. A typo here is a test
// bug, so it traps with the text.

func ip(_ text: String) -> IPv4.Address {
    guard let address = IPv4.Address(parsing: text) else { preconditionFailure("bad test address \(text)") }
    return address
}

func cidr(_ text: String) -> IPv4.Prefix {
    guard let prefix = IPv4.Prefix(parsing: text) else { preconditionFailure("bad test prefix \(text)") }
    return prefix
}

func mac(_ text: String) -> EthernetAddress {
    guard let address = EthernetAddress(parsing: text) else { preconditionFailure("bad test MAC \(text)") }
    return address
}

/// A fixed id whose string form is "00000000-0000-4000-8000-<number as 12 hex digits>".
func fixedID<Object>(_ number: Int) -> ObjectID<Object> {
    let text = "00000000-0000-4000-8000-" + String(format: "%012x", number)
    guard let id = ObjectID<Object>(parsing: text) else { preconditionFailure("bad test id \(text)") }
    return id
}

/// The fields `validate()` flags, in order; empty for a valid object.
func flaggedFields(_ object: some TopologyObject) -> [String] {
    object.validationErrors.map(\.field)
}

func jsonString(_ object: some TopologyObject) throws -> String {
    String(decoding: try object.jsonBytes(), as: UTF8.self)
}

func decode<Object: TopologyObject>(_ type: Object.Type, _ json: String) throws -> Object {
    try Object.decode(jsonBytes: Array(json.utf8))
}

/// The message a user would see for a document that fails to decode, or nil if it decodes.
func decodingMessage<Object: TopologyObject>(_ type: Object.Type, _ json: String) -> String? {
    do {
        _ = try decode(type, json)
        return nil
    } catch {
        return describeDecodingError(error)
    }
}

/// SplitMix64: a small seeded generator so random tests replay exactly.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15  // wrapping is the algorithm
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

extension SeededGenerator {
    /// Any 128 bits, not only version 4, so ordering and parsing see every byte value.
    mutating func nextUUID() -> UUID {
        let hex = String(format: "%016llx%016llx", next(), next())
        var text = ""
        for (index, character) in hex.enumerated() {
            if [8, 12, 16, 20].contains(index) { text.append("-") }
            text.append(character)
        }
        guard let uuid = UUID(uuidString: text) else { preconditionFailure("bad generated UUID \(text)") }
        return uuid
    }

    mutating func nextID<Object>() -> ObjectID<Object> { ObjectID(nextUUID()) }
}

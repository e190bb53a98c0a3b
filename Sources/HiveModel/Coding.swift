import Foundation

// Model fields are decoded through these helpers rather than bare
// `decode(_:forKey:)`, for two reasons:
//
// - Defaults: a field that is absent or null takes its documented default.
// - Paths: swift-foundation's JSONDecoder reports a number that does not fit
//   the field ("tunnelKey": -1, "weight": 1.5) as a path-less "The given data
//   was not valid JSON." (swiftlang/swift-foundation#1604). The helpers catch
//   the non-`DecodingError` it throws at the field and rethrow it with the
//   field's path and value, so `describeDecodingError` can name both.

extension KeyedDecodingContainer {
    /// `decode(_:forKey:)`, with a number that does not fit reported at this key.
    func decodeField<Value: Decodable>(_ type: Value.Type, forKey key: Key) throws -> Value {
        do {
            return try decode(type, forKey: key)
        } catch let error as DecodingError {
            throw error
        } catch {
            throw unrepresentable(type, forKey: key)
        }
    }

    /// `decodeIfPresent(_:forKey:)`, with a number that does not fit reported at this key.
    func decodeFieldIfPresent<Value: Decodable>(_ type: Value.Type, forKey key: Key) throws -> Value? {
        do {
            return try decodeIfPresent(type, forKey: key)
        } catch let error as DecodingError {
            throw error
        } catch {
            throw unrepresentable(type, forKey: key)
        }
    }

    /// Decodes an optional-in-JSON field, using `defaultValue` when the key is absent or null.
    func decode<Value: Decodable>(
        _ type: Value.Type, forKey key: Key, default defaultValue: @autoclosure () -> Value
    ) throws -> Value {
        try decodeFieldIfPresent(type, forKey: key) ?? defaultValue()
    }

    /// A bare UUID field (not a typed id), written as a string.
    func decodeUUID(forKey key: Key) throws -> UUID {
        let text = try decode(String.self, forKey: key)
        guard let uuid = UUID(uuidString: text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: uuidProblem(text))
        }
        return uuid
    }

    private func unrepresentable<Value>(_ type: Value.Type, forKey key: Key) -> DecodingError {
        // Decimal holds any number a user plausibly typed; beyond its range, say so plainly.
        let value = (try? decode(Decimal.self, forKey: key)).map { "'\($0)'" } ?? "the number"
        return DecodingError.dataCorruptedError(
            forKey: key, in: self, debugDescription: "\(value) is not \(expectation(for: type))")
    }
}

extension KeyedEncodingContainer {
    /// Bare UUIDs are written lowercase like typed ids (Foundation would write uppercase).
    mutating func encodeUUID(_ uuid: UUID, forKey key: Key) throws {
        try encode(uuid.uuidString.lowercased(), forKey: key)
    }
}

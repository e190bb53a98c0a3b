import Foundation
import HiveModel
import HiveStore
import Hummingbird

// Reading what a request says: ids in the path, `If-Match`, query
// parameters and JSON bodies. Everything that cannot be read is a 400 that
// names the part of the request and the offending text.

extension APIRequestContext {
    /// The object id in path parameter `name` (default `id`).
    func pathID<T: TopologyObject>(_ type: T.Type, _ name: String = "id") throws -> ObjectID<T> {
        let text = parameters.get(name) ?? ""
        guard let id = ObjectID<T>(parsing: text) else {
            throw APIError.malformed(
                "path parameter \(name): '\(printable(text))' is not a \(T.kind.rawValue) id (expected a UUID like 3f2504e0-4f89-11d3-9a0c-0305e82c3301)",
                field: name, value: printable(text))
        }
        return id
    }
}

extension Request {
    /// The revision `If-Match` requires, or nil without the header (or with `*`).
    /// Accepts `"12"`, `12` and `W/"12"`.
    func expectedRevision() throws -> Revision? {
        guard let header = headers[.ifMatch] else { return nil }
        var text = header.trimmingCharacters(in: .whitespaces)
        if text == "*" { return nil }
        if text.hasPrefix("W/") { text.removeFirst(2) }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = String(text.dropFirst().dropLast()) }
        guard let revision = Revision(text), revision > 0 else {
            throw APIError.malformed(
                "header If-Match: '\(printable(header))' is not a revision (expected the ETag of a read, like \"42\")",
                field: "If-Match", value: printable(header))
        }
        return revision
    }

    /// The query parameters, refusing any name a route does not take, so a
    /// misspelt filter fails loudly instead of being ignored.
    func query(allowing allowed: [String]) throws -> QueryParameters {
        var values: [String: String] = [:]
        for (key, value) in uri.queryParameters {
            let name = String(key)
            guard allowed.contains(name) else {
                let accepted = allowed.isEmpty ? "this route takes no query parameters" : "expected \(allowed.joined(separator: ", "))"
                throw APIError.malformed("query parameter '\(printable(name))' is not known (\(accepted))", field: printable(name))
            }
            guard values[name] == nil else {
                throw APIError.malformed("query parameter '\(name)' is given more than once", field: name)
            }
            values[name] = String(value)
        }
        return QueryParameters(values: values)
    }
}

struct QueryParameters {
    var values: [String: String]

    /// An object id filter, such as `?deviceId=`.
    func id(_ name: String) throws -> UUID? {
        guard let text = values[name] else { return nil }
        guard let uuid = UUID(uuidString: text) else {
            throw APIError.malformed(
                "query parameter \(name): '\(printable(text))' is not an object id (expected a UUID like 3f2504e0-4f89-11d3-9a0c-0305e82c3301)",
                field: name, value: printable(text))
        }
        return uuid
    }

    /// A non-negative integer, such as `?position=`.
    func index(_ name: String) throws -> Int? {
        guard let text = values[name] else { return nil }
        guard let value = Int(text), value >= 0, text.allSatisfy(\.isASCII) else {
            throw APIError.malformed(
                "query parameter \(name): '\(printable(text))' is not a position (expected a whole number from 0)",
                field: name, value: printable(text))
        }
        return value
    }
}

/// A JSON value written into a request body for a field it left out.
struct JSONFragment: Sendable {
    var bytes: [UInt8]

    init(_ value: some Encodable) {
        bytes = (try? ModelJSON.encode(value)) ?? Array("null".utf8)
    }
}

/// A request body that is a JSON object, with the names of its top-level
/// fields, decoded into a model type after filling in fields it omitted.
struct JSONObjectBody {
    let bytes: [UInt8]
    let fields: Set<String>
    /// Fields given as `null`.
    let nullFields: Set<String>

    /// Largest body accepted, as the context says.
    static func read(_ request: Request, context: APIRequestContext) async throws -> JSONObjectBody {
        var request = request
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        let bytes = Array(buffer.readableBytesView)
        guard bytes.contains(where: { !Self.isWhitespace($0) }) else {
            throw APIError.malformed("the request body is empty (expected a JSON object)")
        }
        guard bytes.first(where: { !Self.isWhitespace($0) }) == UInt8(ascii: "{") else {
            throw APIError.malformed("the request body is not a JSON object (expected UTF-8 JSON starting with '{')")
        }
        do {
            let probe = try JSONDecoder().decode(FieldNames.self, from: Data(bytes))
            return JSONObjectBody(bytes: bytes, fields: probe.names, nullFields: probe.nullNames)
        } catch {
            throw APIError(decodingError: error)
        }
    }

    func has(_ field: String) -> Bool { fields.contains(field) }

    /// Decodes `T`, first writing `defaults` for each field the body left out.
    /// A defaulted field given as null is refused: leaving it out is how to
    /// have it filled in (`tenantId: null` is not defaulted; it means no tenant).
    func decode<T: Decodable>(_ type: T.Type, defaults: [String: JSONFragment] = [:]) throws -> T {
        if let field = defaults.keys.sorted().first(where: { $0 != "tenantId" && nullFields.contains($0) }) {
            throw APIError.malformed(
                "request body: field '\(field)' is null (leave it out to have it filled in)", field: field, value: "null")
        }
        do {
            return try ModelJSON.decode(T.self, from: filling(defaults))
        } catch {
            throw APIError(decodingError: error)
        }
    }

    /// The body with `"name": value` inserted after the opening brace for each missing field.
    func filling(_ defaults: [String: JSONFragment]) -> [UInt8] {
        let missing = defaults.filter { !fields.contains($0.key) }.sorted { $0.key < $1.key }
        guard !missing.isEmpty, let brace = bytes.firstIndex(of: UInt8(ascii: "{")) else { return bytes }
        var inserted: [UInt8] = []
        for (index, (name, value)) in missing.enumerated() {
            if index > 0 { inserted.append(UInt8(ascii: ",")) }
            inserted += (try? ModelJSON.encode(name)) ?? []
            inserted.append(UInt8(ascii: ":"))
            inserted += value.bytes
        }
        let rest = bytes[(brace + 1)...]
        if rest.first(where: { !Self.isWhitespace($0) }) != UInt8(ascii: "}") {
            inserted.append(UInt8(ascii: ","))
        }
        return Array(bytes[...brace]) + inserted + rest
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// The names of a JSON object's fields, whatever their values.
    private struct FieldNames: Decodable {
        var names: Set<String>
        var nullNames: Set<String>

        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            names = Set(container.allKeys.map(\.stringValue))
            nullNames = Set(try container.allKeys.filter { try container.decodeNil(forKey: $0) }.map(\.stringValue))
        }
    }
}

extension APIError {
    /// A body the decoder refused: 400 naming the field path.
    init(decodingError error: any Error) {
        let message = describeDecodingError(error)
        var field: String?
        if let error = error as? DecodingError {
            switch error {
            case .keyNotFound(let key, let context):
                field = Self.fieldPath(context.codingPath + [key])
            case .valueNotFound(_, let context), .typeMismatch(_, let context), .dataCorrupted(let context):
                field = context.codingPath.isEmpty ? nil : Self.fieldPath(context.codingPath)
            @unknown default:
                field = nil
            }
        }
        self.init(.badRequest, .malformed, "request body: " + message, field: field)
    }

    /// "members[0].address" from a coding path.
    static func fieldPath(_ codingPath: [any CodingKey]) -> String {
        var path = ""
        for key in codingPath {
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                if !path.isEmpty { path += "." }
                path += key.stringValue
            }
        }
        return path
    }
}

/// Request text quoted back in a message: control characters escaped and
/// long values cut, so a hostile value cannot garble a terminal or a log.
func printable(_ text: some StringProtocol) -> String {
    var result = ""
    for scalar in text.unicodeScalars {
        if scalar.properties.generalCategory == .control {
            result += scalar.escaped(asASCII: true)
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result.count > 80 ? result.prefix(80) + "…" : result
}

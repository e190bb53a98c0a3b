// The JSON shapes of etcd's gRPC gateway (v3 API, as served by etcd 3.4).
//
// The gateway marshals protobuf messages with jsonpb: bytes fields are
// base64 strings, int64 fields are decimal strings, field names are the
// proto names (`range_end`, `mod_revision`, `TTL`), and every field holding
// its zero value is left out (`succeeded: false`, a PUT event's `type`, an
// empty `value`, `kvs` when nothing matched). So every decoded field here is
// optional and read with a default; the request types spell their keys
// explicitly because the proto names mix cases.

import Foundation

/// Namespace for the gateway's wire types.
enum EtcdJSON {}

// MARK: - Scalars

extension EtcdJSON {
    /// An int64 as jsonpb writes it: a decimal string. A bare number is accepted too.
    struct Int64Value: Codable, Hashable, Sendable, ExpressibleByIntegerLiteral {
        var value: Int64

        init(_ value: Int64) { self.value = value }
        init(integerLiteral value: Int64) { self.value = value }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int64.self) {
                value = number
                return
            }
            let text = try container.decode(String.self)
            guard let number = Int64(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "expected an int64 as a decimal string, got \"\(text)\"")
            }
            value = number
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(String(value))
        }
    }

    /// A bytes field: base64 on the wire.
    struct Bytes: Codable, Hashable, Sendable {
        var bytes: [UInt8]

        init(_ bytes: [UInt8]) { self.bytes = bytes }
        init(_ text: String) { self.bytes = Array(text.utf8) }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "expected base64 bytes, got \"\(text.prefix(40))\"")
            }
            bytes = Array(data)
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(Data(bytes).base64EncodedString())
        }
    }
}

extension Optional where Wrapped == EtcdJSON.Int64Value {
    /// The value, or the proto default 0 when the gateway left it out.
    var orZero: Int64 { self?.value ?? 0 }
}

// MARK: - Requests

extension EtcdJSON {
    struct RangeRequest: Encodable {
        var key: Bytes
        var rangeEnd: Bytes?
        var limit: Int64Value?
        var countOnly: Bool?

        enum CodingKeys: String, CodingKey {
            case key, limit
            case rangeEnd = "range_end"
            case countOnly = "count_only"
        }
    }

    struct PutRequest: Encodable {
        var key: Bytes
        var value: Bytes
        var lease: Int64Value?
        var prevKeyValue: Bool?

        enum CodingKeys: String, CodingKey {
            case key, value, lease
            case prevKeyValue = "prev_kv"
        }
    }

    struct DeleteRangeRequest: Encodable {
        var key: Bytes
        var rangeEnd: Bytes?

        enum CodingKeys: String, CodingKey {
            case key
            case rangeEnd = "range_end"
        }
    }

    struct Compare: Encodable {
        var key: Bytes
        var rangeEnd: Bytes?
        /// VERSION, CREATE, MOD, VALUE or LEASE.
        var target: String
        /// EQUAL, GREATER, LESS or NOT_EQUAL.
        var result: String
        var version: Int64Value?
        var createRevision: Int64Value?
        var modRevision: Int64Value?
        var value: Bytes?
        var lease: Int64Value?

        enum CodingKeys: String, CodingKey {
            case key, target, result, version, value, lease
            case rangeEnd = "range_end"
            case createRevision = "create_revision"
            case modRevision = "mod_revision"
        }
    }

    /// One operation of a transaction branch: exactly one field is set.
    struct RequestOp: Encodable {
        var range: RangeRequest?
        var put: PutRequest?
        var deleteRange: DeleteRangeRequest?

        enum CodingKeys: String, CodingKey {
            case range = "request_range"
            case put = "request_put"
            case deleteRange = "request_delete_range"
        }
    }

    struct TxnRequest: Encodable {
        var compare: [Compare]
        var success: [RequestOp]
        var failure: [RequestOp]
    }

    struct CompactionRequest: Encodable {
        var revision: Int64Value
        var physical: Bool
    }

    struct LeaseGrantRequest: Encodable {
        var ttl: Int64Value
        enum CodingKeys: String, CodingKey { case ttl = "TTL" }
    }

    /// Keep-alive and revoke take the same body.
    struct LeaseIDRequest: Encodable {
        var id: Int64Value
        enum CodingKeys: String, CodingKey { case id = "ID" }
    }

    struct WatchRequest: Encodable {
        struct Create: Encodable {
            var key: Bytes
            var rangeEnd: Bytes?
            var startRevision: Int64Value
            var progressNotify: Bool

            enum CodingKeys: String, CodingKey {
                case key
                case rangeEnd = "range_end"
                case startRevision = "start_revision"
                case progressNotify = "progress_notify"
            }
        }

        var create: Create
        enum CodingKeys: String, CodingKey { case create = "create_request" }
    }
}

// MARK: - Responses

extension EtcdJSON {
    struct ResponseHeader: Decodable {
        var revision: Int64Value?
    }

    struct KeyValue: Decodable {
        var key: Bytes?
        var createRevision: Int64Value?
        var modRevision: Int64Value?
        var version: Int64Value?
        var value: Bytes?
        var lease: Int64Value?

        enum CodingKeys: String, CodingKey {
            case key, version, value, lease
            case createRevision = "create_revision"
            case modRevision = "mod_revision"
        }

        var model: HiveStore.KeyValue {
            HiveStore.KeyValue(
                key: String(decoding: key?.bytes ?? [], as: UTF8.self),
                value: value?.bytes ?? [],
                createRevision: createRevision.orZero,
                modRevision: modRevision.orZero,
                version: version.orZero,
                lease: lease.orZero)
        }
    }

    struct RangeResponse: Decodable {
        var header: ResponseHeader?
        var kvs: [KeyValue]?
    }

    struct PutResponse: Decodable {
        var header: ResponseHeader?
        var prevKeyValue: KeyValue?

        enum CodingKeys: String, CodingKey {
            case header
            case prevKeyValue = "prev_kv"
        }
    }

    struct DeleteRangeResponse: Decodable {
        var header: ResponseHeader?
        var deleted: Int64Value?
    }

    struct ResponseOp: Decodable {
        var range: RangeResponse?
        var put: PutResponse?
        var deleteRange: DeleteRangeResponse?

        enum CodingKeys: String, CodingKey {
            case range = "response_range"
            case put = "response_put"
            case deleteRange = "response_delete_range"
        }
    }

    struct TxnResponse: Decodable {
        var header: ResponseHeader?
        var succeeded: Bool?
        var responses: [ResponseOp]?
    }

    struct HeaderOnlyResponse: Decodable {
        var header: ResponseHeader?
    }

    struct LeaseGrantResponse: Decodable {
        var header: ResponseHeader?
        var id: Int64Value?
        var ttl: Int64Value?
        var error: String?

        enum CodingKeys: String, CodingKey {
            case header, error
            case id = "ID"
            case ttl = "TTL"
        }
    }

    struct LeaseKeepAliveResponse: Decodable {
        var header: ResponseHeader?
        var id: Int64Value?
        var ttl: Int64Value?

        enum CodingKeys: String, CodingKey {
            case header
            case id = "ID"
            case ttl = "TTL"
        }
    }

    struct Event: Decodable {
        /// Absent for PUT (the enum's zero value); "DELETE" otherwise.
        var type: String?
        var kv: KeyValue?
    }

    struct WatchResponse: Decodable {
        var header: ResponseHeader?
        var created: Bool?
        var canceled: Bool?
        var compactRevision: Int64Value?
        var cancelReason: String?
        var events: [Event]?
        /// Which watcher of the stream; etcd numbers them from 0, and the gateway leaves 0 out.
        var watchID: Int64Value?

        enum CodingKeys: String, CodingKey {
            case header, created, canceled, events
            case watchID = "watch_id"
            case compactRevision = "compact_revision"
            case cancelReason = "cancel_reason"
        }
    }

    /// One message of a streaming call (watch, lease keep-alive): either a
    /// result or an error.
    struct StreamMessage<Result: Decodable>: Decodable {
        var result: Result?
        var error: ErrorField?
    }

    /// The body of a failed call: `{"error": "...", "code": 5, "message": "..."}`.
    /// In a stream the error is an object (`{"grpc_code", "message", ...}`);
    /// both shapes are read.
    struct ErrorBody: Decodable {
        var error: ErrorField?
        var code: Int?
        var message: String?

        /// The best description the body gives.
        var text: String { message ?? error?.message ?? "no message" }
        var grpcCode: Int? { code ?? error?.grpcCode }
    }

    struct ErrorField: Decodable {
        var message: String
        var grpcCode: Int?

        enum CodingKeys: String, CodingKey {
            case message
            case grpcCode = "grpc_code"
        }

        init(from decoder: any Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self) {
                message = text
                grpcCode = nil
                return
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            message = try container.decodeIfPresent(String.self, forKey: .message) ?? "no message"
            grpcCode = try container.decodeIfPresent(Int.self, forKey: .grpcCode)
        }
    }
}

// MARK: - Coding

extension EtcdJSON {
    static func encode(_ value: some Encodable) throws -> [UInt8] {
        Array(try JSONEncoder().encode(value))
    }

    /// Decodes a gateway answer; a malformed one becomes `StoreError.rejected`
    /// quoting the start of the offending body.
    static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8], what: String) throws -> Value {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            let excerpt = String(decoding: bytes.prefix(200), as: UTF8.self)
            throw StoreError.rejected("etcd answered \(what) with JSON that is not a \(type): \(error); body starts: \(excerpt)")
        }
    }
}

/// Turns an error from decoding a model document into one line a user can
/// act on, naming the field path and, where the decoder kept it, the value:
/// "field 'subnet': '10.0.0.0/33' is not an IPv4 CIDR (expected like 10.0.0.0/24)".
public func describeDecodingError(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return String(describing: error) }
    switch error {
    case .keyNotFound(let key, let context):
        return "field '\(fieldPath(context.codingPath + [key]))' is missing"
    case .valueNotFound(let type, let context):
        return "\(fieldLabel(context.codingPath)) is null (expected \(expectation(for: type)))"
    case .typeMismatch(let type, let context):
        return "\(fieldLabel(context.codingPath)): expected \(expectation(for: type)) (\(context.debugDescription))"
    case .dataCorrupted(let context):
        if context.codingPath.isEmpty {
            // Malformed JSON: the decoder's own words plus the parser's position.
            var message = "not valid JSON: \(context.debugDescription)"
            if let underlying = context.underlyingError {
                message += " (\(underlying))"
            }
            return message
        }
        return "\(fieldLabel(context.codingPath)): \(context.debugDescription)"
    @unknown default:
        return String(describing: error)
    }
}

/// "members[0].address" from the decoder's coding path.
func fieldPath(_ codingPath: [any CodingKey]) -> String {
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

private func fieldLabel(_ codingPath: [any CodingKey]) -> String {
    codingPath.isEmpty ? "document" : "field '\(fieldPath(codingPath))'"
}

/// What a JSON value of `type` looks like, in words a user types.
func expectation(for type: Any.Type) -> String {
    switch type {
    case is Bool.Type: return "true or false"
    case is String.Type: return "a string"
    case is UInt8.Type: return "a whole number from 0 to 255"
    case is UInt16.Type: return "a whole number from 0 to 65535"
    case is UInt32.Type: return "a whole number from 0 to 4294967295"
    case is any BinaryInteger.Type: return "a whole number"
    case is any BinaryFloatingPoint.Type: return "a number"
    case is [String: Any].Type: return "an object"
    case is [Any].Type: return "a list"
    default: return "a value of type \(type)"
    }
}

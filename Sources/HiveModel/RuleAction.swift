/// What a rule does with a packet its conditions match.
///
/// Coded as an object tagged by `type` (`{"type": "jump", "chainId": "..."}`).
/// To add an action: add the case here and in `ActionType`, then the
/// compiler points at each switch needing a branch.
public enum RuleAction: Hashable, Sendable {
    case accept
    case drop
    /// Drop and answer: TCP reset or ICMP unreachable.
    case reject
    /// Evaluate the rules of another chain; its `return` comes back here.
    case jump(ChainID)
    /// Stop this chain, resuming the chain that jumped here (or accept at top level).
    case `return`
    /// Ignore the match and go on to the next rule (for rules that only count or log).
    case `continue`
    /// Translate the source of a new connection to the target (and its
    /// replies back), then accept. Only on router chains.
    case snat(NATTarget)
    /// Translate the destination of a new connection to the target (and
    /// its replies' source back), then accept. Only on router chains.
    case dnat(NATTarget)

    /// The `type` tags; their raw values are the JSON contract.
    public enum ActionType: String, Codable, CaseIterable, Sendable {
        case accept, drop, reject, jump, `return`, `continue`, snat, dnat
    }

    public var type: ActionType {
        switch self {
        case .accept: return .accept
        case .drop: return .drop
        case .reject: return .reject
        case .jump: return .jump
        case .return: return .return
        case .continue: return .continue
        case .snat: return .snat
        case .dnat: return .dnat
        }
    }

    /// The chain jumped to, for a `jump`.
    public var jumpTarget: ChainID? {
        if case .jump(let chainId) = self { return chainId }
        return nil
    }

    /// The translation of a `snat` or `dnat`.
    public var natTarget: NATTarget? {
        switch self {
        case .snat(let target), .dnat(let target): return target
        default: return nil
        }
    }
}

extension RuleAction: Codable {
    enum CodingKeys: String, CodingKey {
        case type, chainId, target
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let text = try container.decode(String.self, forKey: .type)
        guard let type = ActionType(rawValue: text) else {
            let accepted = ActionType.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: container,
                debugDescription: "'\(text)' is not a rule action type (expected one of: \(accepted))")
        }
        switch type {
        case .accept: self = .accept
        case .drop: self = .drop
        case .reject: self = .reject
        case .jump: self = .jump(try container.decode(ChainID.self, forKey: .chainId))
        case .return: self = .return
        case .continue: self = .continue
        case .snat: self = .snat(try container.decode(NATTarget.self, forKey: .target))
        case .dnat: self = .dnat(try container.decode(NATTarget.self, forKey: .target))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        switch self {
        case .jump(let chainId): try container.encode(chainId, forKey: .chainId)
        case .snat(let target), .dnat(let target): try container.encode(target, forKey: .target)
        case .accept, .drop, .reject, .return, .continue: break
        }
    }
}

extension RuleAction: CustomStringConvertible {
    public var description: String {
        switch self {
        case .jump(let chainId): return "jump \(chainId)"
        case .snat(let target): return "snat to \(target)"
        case .dnat(let target): return "dnat to \(target)"
        default: return type.rawValue
        }
    }
}

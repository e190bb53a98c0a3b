import ArgumentParser
import Foundation
import HiveAPI

/// A bearer token kept in a file (`hive agent --control-token-file`,
/// `hive api --agent-token-file`, the CLI's `--token-file`): one line of at
/// least `TokenTable.minimumTokenLength` characters, readable by its owner
/// only, as ssh insists for keys, so the token does not show in `ps` or leak
/// to other users. Errors name the file, never the token.
enum TokenFile {
    static func read(_ path: String, option: String) throws -> String {
        try checkPrivate(path, option: option)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("\(option) \(path): cannot read it as UTF-8 text")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            throw ValidationError("\(option) \(path): expected one token (no spaces) on one line")
        }
        if let problem = TokenTable.tokenProblem(token) { throw ValidationError("\(option) \(path): the token \(problem)") }
        return token
    }
}

extension TokenFile {
    /// A regular file readable by its owner only, or a refusal naming the option and the fix.
    static func checkPrivate(_ path: String, option: String) throws {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw ValidationError("\(option) \(path): cannot read it (\(String(cString: strerror(errno))))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw ValidationError("\(option) \(path): is not a regular file")
        }
        let permissions = status.st_mode & 0o777
        guard permissions & 0o077 == 0 else {
            throw ValidationError(
                "\(option) \(path): its mode is \(String(permissions, radix: 8)), readable by other users; make it private with: chmod 600 \(path)")
        }
    }
}

/// The API's tokens file (`hive api --tokens-file`): one principal per line,
///
///     admin <token>
///     tenant <name> <token>
///
/// with `#` comments and blank lines. Owner-only (chmod 600), tokens of at
/// least `TokenTable.minimumTokenLength` characters. Errors name the line, never a token.
enum TokensFile {

    static func read(_ path: String) throws -> TokenTable {
        try TokenFile.checkPrivate(path, option: "--tokens-file")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("--tokens-file \(path): cannot read it as UTF-8 text")
        }
        var table = TokenTable()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
            if words.isEmpty { continue }
            let location = "--tokens-file \(path), line \(index + 1)"
            let token: String
            let principal: Principal
            switch (words.first, words.count) {
            case ("admin", 2):
                token = words[1]
                principal = .admin
            case ("tenant", 3):
                if let problem = TokenTable.tenantProblem(words[1]) {
                    throw ValidationError("\(location): tenant '\(words[1])' \(problem)")
                }
                token = words[2]
                principal = .tenant(words[1])
            default:
                throw ValidationError("\(location): expected 'admin TOKEN' or 'tenant NAME TOKEN'")
            }
            if let problem = TokenTable.tokenProblem(token) { throw ValidationError("\(location): the token \(problem)") }
            table.add(token: token, for: principal)
        }
        guard !table.isEmpty else { throw ValidationError("--tokens-file \(path): no token in it (expected 'admin TOKEN' or 'tenant NAME TOKEN' lines)") }
        return table
    }
}

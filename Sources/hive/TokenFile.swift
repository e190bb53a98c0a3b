import ArgumentParser
import Foundation

/// A bearer token kept in a file (`hive agent --control-token-file`,
/// `hive api --agent-token-file`): one line, readable by its owner only, as
/// ssh insists for keys, so the token does not show in `ps` or leak to other users.
enum TokenFile {
    static func read(_ path: String, option: String) throws -> String {
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
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("\(option) \(path): cannot read it as UTF-8 text")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            throw ValidationError("\(option) \(path): expected one token (no spaces) on one line")
        }
        return token
    }
}

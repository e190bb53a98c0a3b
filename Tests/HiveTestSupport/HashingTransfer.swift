/// Python programs for a TCP transfer checked end to end: the server hashes
/// what it receives and prints the sha256; the client sends random bytes
/// (`argv[1]` address, `argv[2]` count), retrying the connection for 15 s,
/// and prints their sha256.
public enum HashingTransfer {
    public static func server(port: Int, acceptTimeout: Int = 30) -> String {
        """
        import hashlib, socket
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", \(port))); s.listen(1); s.settimeout(\(acceptTimeout))
        c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256()
        while True:
            b = c.recv(65536)
            if not b: break
            h.update(b)
        print(h.hexdigest(), flush=True)
        """
    }

    public static func client(port: Int) -> String {
        """
        import hashlib, os, socket, sys, time
        data = os.urandom(int(sys.argv[2])); deadline = time.time() + 15
        while True:
            try:
                c = socket.create_connection((sys.argv[1], \(port)), timeout=5); break
            except OSError:
                if time.time() > deadline: raise
                time.sleep(0.2)
        c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
        print(hashlib.sha256(data).hexdigest(), flush=True)
        """
    }
}

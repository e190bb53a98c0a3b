// The Linux calls the datapath needs that Swift's Glibc module does not
// expose well: AF_PACKET sockets, recvmmsg/sendmmsg batches, setns.
// Every function returns a non-negative result or -errno; none allocates.
#ifndef CHIVE_SYSTEM_H
#define CHIVE_SYSTEM_H

#include <stddef.h>
#include <stdint.h>

/// One frame of a batch: the caller owns `base` (`capacity` bytes).
/// Receive fills `length` (and, on UDP sockets, the sender's address).
typedef struct {
    void *base;
    uint32_t capacity;
    uint32_t length;
    /// IPv4 address and UDP port, network byte order (UDP sockets only).
    uint32_t address;
    uint16_t port;
    /// Set when the frame was cut to `capacity` (MSG_TRUNC).
    uint8_t truncated;
    uint8_t reserved;
} hive_frame;

/// One datagram to send: a header (the tunnel header) and a payload (the
/// inner frame), gathered without copying, to `address`:`port` (network order).
typedef struct {
    const void *header;
    uint32_t header_length;
    uint32_t payload_length;
    const void *payload;
    uint32_t address;
    uint16_t port;
    uint16_t reserved;
} hive_datagram;

/// The most frames one batch call handles.
#define HIVE_BATCH_MAX 64

/// Opens a non-blocking AF_PACKET socket bound to interface `name`, which
/// does not see its own transmissions; `buffer_bytes` for each direction
/// (forced past the sysctl limits as root). Stores the interface index.
int hive_packet_socket_open(const char *name, int buffer_bytes, int *interface_index);

/// Frames the kernel dropped on a packet socket (its receive queue was
/// full) since the last call; the kernel resets the count on each read.
int64_t hive_packet_socket_drops(int fd);
/// Datagrams the kernel dropped on a socket since it opened (receive queue full), or -errno.
int64_t hive_socket_drops(int fd);
/// Puts the socket's interface in promiscuous mode for as long as the socket is open.
int hive_packet_socket_promiscuous(int fd, int interface_index);

/// Opens a non-blocking UDP socket bound to `address`:`port` (network order).
int hive_udp_socket_open(uint32_t address, uint16_t port, int buffer_bytes);

/// The local port a UDP socket is bound to (host order), or -errno.
int hive_udp_socket_port(int fd);

/// Receives up to `count` frames without blocking; returns how many.
int hive_receive_batch(int fd, hive_frame *frames, int count);

/// Sends `count` frames on a bound packet socket; returns how many went.
int hive_send_frames(int fd, const hive_frame *frames, int count);

/// Sends `count` datagrams on a UDP socket; returns how many went.
int hive_send_datagrams(int fd, const hive_datagram *datagrams, int count);

/// Moves the calling thread into the network namespace at `path`
/// (e.g. /run/netns/NAME). Sockets it opens afterwards live there.
int hive_enter_network_namespace(const char *path);

/// The calling thread's current network namespace, as an open fd (to return to it).
int hive_current_network_namespace(void);

/// Returns the calling thread to the namespace of `fd` (from hive_current_network_namespace).
int hive_return_to_network_namespace(int fd);

/// A non-blocking eventfd, to wake a poll loop.
int hive_eventfd_open(void);
int hive_eventfd_signal(int fd);
int hive_eventfd_drain(int fd);

/// Waits for input on `fds` for up to `timeout_ms`; `ready` gets 1 where
/// input is waiting. Returns how many are ready, 0 on timeout.
int hive_poll_input(const int *fds, uint8_t *ready, int count, int timeout_ms);

#endif

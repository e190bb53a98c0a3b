// The Linux calls the datapath needs that Swift's Glibc module does not
// expose well: AF_PACKET sockets with virtio-net headers, recvmmsg/sendmmsg
// batches, UDP segmentation offload, setns.
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
    /// UDP sockets with UDP_GRO: the size of each datagram the kernel
    /// coalesced into this buffer (the last may be shorter); 0: one datagram.
    uint16_t segment_size;
} hive_frame;

/// A frame's virtio-net header (struct virtio_net_hdr, host byte order: the
/// packet socket's legacy little-endian layout on a little-endian host), read
/// before and written before every frame of a packet socket opened with
/// `virtio_net_header`. All zero: a whole frame with complete checksums.
typedef struct {
    /// HIVE_VNET_NEEDS_CSUM: the L4 checksum at csum_start + csum_offset holds
    /// only the pseudo-header sum; the sum from csum_start on is still to do.
    uint8_t flags;
    /// HIVE_VNET_GSO_*: a super-frame to cut into gso_size payloads (ECN bit 0x80 aside).
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
} hive_vnet_header;

#define HIVE_VNET_NEEDS_CSUM 1
#define HIVE_VNET_DATA_VALID 2
#define HIVE_VNET_GSO_NONE 0
#define HIVE_VNET_GSO_TCPV4 1
#define HIVE_VNET_GSO_UDP 3
#define HIVE_VNET_GSO_TCPV6 4
#define HIVE_VNET_GSO_UDP_L4 5
#define HIVE_VNET_GSO_ECN 0x80

/// One datagram to send: a header (the tunnel header) and a payload (the
/// inner frame), gathered without copying, to `address`:`port` (network order).
typedef struct {
    const void *header;
    uint32_t header_length;
    uint32_t payload_length;
    const void *payload;
    uint32_t address;
    uint16_t port;
    /// Non-zero: header + payload are several datagrams of this size each
    /// (the last may be shorter), sent in one call with UDP_SEGMENT; if the
    /// kernel refuses that (no checksum offload on the route), one by one.
    uint16_t segment_size;
} hive_datagram;

/// The most frames one batch call handles.
#define HIVE_BATCH_MAX 64

/// Opens a non-blocking AF_PACKET socket bound to interface `name`, which
/// does not see its own transmissions; `buffer_bytes` for each direction
/// (forced past the sysctl limits as root). Stores the interface index.
/// With `virtio_net_header` (PACKET_VNET_HDR) every frame read or written
/// has a `hive_vnet_header`: segmentation-offloaded super-frames and partial
/// checksums come and go as they are.
int hive_packet_socket_open(const char *name, int buffer_bytes, int virtio_net_header, int *interface_index);

/// Frames the kernel dropped on a packet socket (its receive queue was
/// full) since the last call; the kernel resets the count on each read.
int64_t hive_packet_socket_drops(int fd);
/// Datagrams the kernel dropped on a socket since it opened (receive queue full), or -errno.
int64_t hive_socket_drops(int fd);
/// Puts the socket's interface in promiscuous mode for as long as the socket is open.
int hive_packet_socket_promiscuous(int fd, int interface_index);

/// Opens a non-blocking UDP socket bound to `address`:`port` (network order).
/// With `receive_coalesced` (UDP_GRO) the kernel may hand several datagrams of
/// one sender in one buffer (`hive_frame.segment_size`).
int hive_udp_socket_open(uint32_t address, uint16_t port, int buffer_bytes, int receive_coalesced);

/// The local port a UDP socket is bound to (host order), or -errno.
int hive_udp_socket_port(int fd);

/// Receives up to `count` frames without blocking; returns how many. On a
/// packet socket with virtio-net headers pass `headers` (`count` of them):
/// each frame's header goes there, and `length` counts the frame alone.
int hive_receive_batch(int fd, hive_frame *frames, hive_vnet_header *headers, int count);

/// Sends `count` frames on a bound packet socket; returns how many went.
/// `headers` (one per frame) on a socket with virtio-net headers, else NULL.
int hive_send_frames(int fd, const hive_frame *frames, const hive_vnet_header *headers, int count);

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

/// Sets the calling thread's nice value; 0 or -errno.
int hive_set_thread_nice(int nice);

#endif

#define _GNU_SOURCE
#include "CHiveSystem.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sock_diag.h>
#include <linux/virtio_net.h>
#include <netinet/udp.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

_Static_assert(sizeof(hive_vnet_header) == sizeof(struct virtio_net_hdr), "hive_vnet_header is struct virtio_net_hdr");

static void set_buffers(int fd, int bytes) {
    if (bytes <= 0) return;
    // The FORCE variants pass net.core.[rw]mem_max as root; fall back quietly.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

int hive_packet_socket_open(const char *name, int buffer_bytes, int virtio_net_header, int *interface_index) {
    unsigned index = if_nametoindex(name);
    if (index == 0) return -errno;
    // Protocol 0: nothing is queued until bind, so no frame of another
    // interface (or without its header) is read first.
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (virtio_net_header && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &virtio_net_header, sizeof virtio_net_header) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    struct sockaddr_ll address;
    memset(&address, 0, sizeof address);
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = (int)index;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    int one = 1;
    // Frames this socket sends must not come back to it as input.
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    // The kernel strips a VLAN tag into metadata (rx VLAN offload); the
    // auxiliary data gives it back, and hive_receive_batch restores it.
    setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one);
    set_buffers(fd, buffer_bytes);
    *interface_index = (int)index;
    return fd;
}

int hive_packet_socket_promiscuous(int fd, int interface_index) {
    // A membership of this socket: the kernel drops it (and the interface's
    // promiscuity count) when the socket closes.
    struct packet_mreq request;
    memset(&request, 0, sizeof request);
    request.mr_ifindex = interface_index;
    request.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &request, sizeof request) != 0) return -errno;
    return 0;
}

int64_t hive_packet_socket_drops(int fd) {
    struct tpacket_stats stats;
    socklen_t length = sizeof stats;
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &length) != 0) return -errno;
    return (int64_t)stats.tp_drops;
}

int64_t hive_socket_drops(int fd) {
    // SO_MEMINFO (Linux 4.6): the socket's drop count, cumulative, at SK_MEMINFO_DROPS.
    uint32_t info[SK_MEMINFO_VARS];
    socklen_t length = sizeof info;
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &length) != 0) return -errno;
    if (length <= SK_MEMINFO_DROPS * sizeof(uint32_t)) return -EINVAL;
    return (int64_t)info[SK_MEMINFO_DROPS];
}

int hive_udp_socket_open(uint32_t address, uint16_t port, int buffer_bytes, int receive_coalesced) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Linux 5.0; without it each datagram comes alone, which is still right.
    if (receive_coalesced) setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
    struct sockaddr_in local;
    memset(&local, 0, sizeof local);
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = address;
    local.sin_port = port;
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    set_buffers(fd, buffer_bytes);
    return fd;
}

int hive_udp_socket_port(int fd) {
    struct sockaddr_in local;
    socklen_t length = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &length) != 0) return -errno;
    return ntohs(local.sin_port);
}

/// Puts back the 802.1Q tag the kernel moved into `aux`, if any and if the
/// frame has room (4 bytes after the MACs); offsets in `header` (if any)
/// move with the bytes after the tag. Reads UDP_GRO's segment size.
static void read_control(hive_frame *frame, hive_vnet_header *header, const struct msghdr *message) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)message); c; c = CMSG_NXTHDR((struct msghdr *)message, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int size;
            memcpy(&size, CMSG_DATA(c), sizeof size);
            frame->segment_size = (size > 0 && size < 65536 && (uint32_t)size < frame->length) ? (uint16_t)size : 0;
            continue;
        }
        if (frame->truncated || c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
        if (c->cmsg_len < CMSG_LEN(sizeof(struct tpacket_auxdata))) continue;
        struct tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(c), sizeof aux);
        if (!(aux.tp_status & TP_STATUS_VLAN_VALID) && aux.tp_vlan_tci == 0) return;
        if (frame->length < 12 || frame->length + 4 > frame->capacity) return;
        uint8_t *bytes = frame->base;
        memmove(bytes + 16, bytes + 12, frame->length - 12);
        uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : ETH_P_8021Q;
        bytes[12] = (uint8_t)(tpid >> 8);
        bytes[13] = (uint8_t)tpid;
        bytes[14] = (uint8_t)(aux.tp_vlan_tci >> 8);
        bytes[15] = (uint8_t)aux.tp_vlan_tci;
        frame->length += 4;
        if (header && (header->flags & HIVE_VNET_NEEDS_CSUM)) header->csum_start += 4;
        if (header && header->gso_type != HIVE_VNET_GSO_NONE) header->hdr_len += 4;
        return;
    }
}

int hive_receive_batch(int fd, hive_frame *frames, hive_vnet_header *headers, int count) {
    if (count > HIVE_BATCH_MAX) count = HIVE_BATCH_MAX;
    struct mmsghdr messages[HIVE_BATCH_MAX];
    struct iovec vectors[HIVE_BATCH_MAX * 2];
    struct sockaddr_storage sources[HIVE_BATCH_MAX];
    // Room for one struct tpacket_auxdata per frame (packet sockets), or UDP_GRO's size.
    union { struct cmsghdr align; char bytes[CMSG_SPACE(sizeof(struct tpacket_auxdata))]; } controls[HIVE_BATCH_MAX];
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        struct iovec *vector = &vectors[2 * i];
        if (headers) {
            vector->iov_base = &headers[i];
            vector->iov_len = sizeof headers[i];
            vector++;
        }
        vector->iov_base = frames[i].base;
        vector->iov_len = frames[i].capacity;
        messages[i].msg_hdr.msg_iov = &vectors[2 * i];
        messages[i].msg_hdr.msg_iovlen = headers ? 2 : 1;
        messages[i].msg_hdr.msg_name = &sources[i];
        messages[i].msg_hdr.msg_namelen = sizeof sources[i];
        messages[i].msg_hdr.msg_control = controls[i].bytes;
        messages[i].msg_hdr.msg_controllen = sizeof controls[i].bytes;
    }
    int received = recvmmsg(fd, messages, (unsigned)count, MSG_DONTWAIT, NULL);
    if (received < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < received; i++) {
        uint32_t length = messages[i].msg_len;
        frames[i].truncated = (messages[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
        frames[i].segment_size = 0;
        if (headers) {
            // Shorter than its header: nothing the kernel makes; an empty frame the caller drops.
            if (length < sizeof headers[i]) memset(&headers[i], 0, sizeof headers[i]);
            length = length < sizeof headers[i] ? 0 : length - (uint32_t)sizeof headers[i];
        }
        frames[i].length = length;
        if (messages[i].msg_hdr.msg_controllen > 0) read_control(&frames[i], headers ? &headers[i] : NULL, &messages[i].msg_hdr);
        const struct sockaddr_in *source = (const struct sockaddr_in *)&sources[i];
        if (messages[i].msg_hdr.msg_namelen >= sizeof(struct sockaddr_in) && source->sin_family == AF_INET) {
            frames[i].address = source->sin_addr.s_addr;
            frames[i].port = source->sin_port;
        } else {
            frames[i].address = 0;
            frames[i].port = 0;
        }
    }
    return received;
}

int hive_send_frames(int fd, const hive_frame *frames, const hive_vnet_header *headers, int count) {
    if (count > HIVE_BATCH_MAX) count = HIVE_BATCH_MAX;
    struct mmsghdr messages[HIVE_BATCH_MAX];
    struct iovec vectors[HIVE_BATCH_MAX * 2];
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        struct iovec *vector = &vectors[2 * i];
        if (headers) {
            vector->iov_base = (void *)&headers[i];
            vector->iov_len = sizeof headers[i];
            vector++;
        }
        vector->iov_base = frames[i].base;
        vector->iov_len = frames[i].length;
        messages[i].msg_hdr.msg_iov = &vectors[2 * i];
        messages[i].msg_hdr.msg_iovlen = headers ? 2 : 1;
    }
    int done = 0, sent = 0;
    while (done < count) {
        int result = sendmmsg(fd, messages + done, (unsigned)(count - done), MSG_DONTWAIT);
        if (result < 0) {
            if (errno == EINTR) continue;
            // A frame the device refuses (too long, ENOBUFS) is skipped, not retried forever.
            done++;
            continue;
        }
        done += result;
        sent += result;
    }
    return sent;
}

/// How many datagrams `datagram` stands for.
static int datagram_count(const hive_datagram *datagram) {
    uint32_t total = datagram->header_length + datagram->payload_length;
    return datagram->segment_size ? (int)((total + datagram->segment_size - 1) / datagram->segment_size) : 1;
}

/// Sends a UDP_SEGMENT run as separate datagrams (the route's device has no
/// checksum offload, so the kernel refused the run); returns how many went.
/// Runs have no separate header (header_length 0): the datapath lays them out whole.
static int send_segments_singly(int fd, const hive_datagram *datagram, const struct sockaddr_in *destination) {
    const uint8_t *bytes = datagram->payload;
    int sent = 0;
    for (uint32_t offset = 0; offset < datagram->payload_length; offset += datagram->segment_size) {
        uint32_t length = datagram->payload_length - offset;
        if (length > datagram->segment_size) length = datagram->segment_size;
        if (sendto(fd, bytes + offset, length, MSG_DONTWAIT, (const struct sockaddr *)destination, sizeof *destination) == (ssize_t)length) sent++;
    }
    return sent;
}

int hive_send_datagrams(int fd, const hive_datagram *datagrams, int count) {
    if (count > HIVE_BATCH_MAX) count = HIVE_BATCH_MAX;
    struct mmsghdr messages[HIVE_BATCH_MAX];
    struct iovec vectors[HIVE_BATCH_MAX * 2];
    struct sockaddr_in destinations[HIVE_BATCH_MAX];
    union { struct cmsghdr align; char bytes[CMSG_SPACE(sizeof(uint16_t))]; } controls[HIVE_BATCH_MAX];
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        vectors[2 * i].iov_base = (void *)datagrams[i].header;
        vectors[2 * i].iov_len = datagrams[i].header_length;
        vectors[2 * i + 1].iov_base = (void *)datagrams[i].payload;
        vectors[2 * i + 1].iov_len = datagrams[i].payload_length;
        memset(&destinations[i], 0, sizeof destinations[i]);
        destinations[i].sin_family = AF_INET;
        destinations[i].sin_addr.s_addr = datagrams[i].address;
        destinations[i].sin_port = datagrams[i].port;
        messages[i].msg_hdr.msg_iov = &vectors[2 * i];
        messages[i].msg_hdr.msg_iovlen = 2;
        messages[i].msg_hdr.msg_name = &destinations[i];
        messages[i].msg_hdr.msg_namelen = sizeof destinations[i];
        if (datagram_count(&datagrams[i]) > 1) {
            memset(&controls[i], 0, sizeof controls[i]);
            messages[i].msg_hdr.msg_control = controls[i].bytes;
            messages[i].msg_hdr.msg_controllen = sizeof controls[i].bytes;
            struct cmsghdr *control = CMSG_FIRSTHDR(&messages[i].msg_hdr);
            control->cmsg_level = SOL_UDP;
            control->cmsg_type = UDP_SEGMENT;
            control->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t size = datagrams[i].segment_size;
            memcpy(CMSG_DATA(control), &size, sizeof size);
        }
    }
    int done = 0, sent = 0;
    while (done < count) {
        int result = sendmmsg(fd, messages + done, (unsigned)(count - done), MSG_DONTWAIT);
        if (result < 0) {
            if (errno == EINTR) continue;
            if ((errno == EIO || errno == EINVAL) && messages[done].msg_hdr.msg_controllen > 0)
                sent += send_segments_singly(fd, &datagrams[done], &destinations[done]);
            // One unreachable peer (ECONNREFUSED, EHOSTUNREACH) must not hold back the rest.
            done++;
            continue;
        }
        for (int i = done; i < done + result; i++) sent += datagram_count(&datagrams[i]);
        done += result;
    }
    return sent;
}

int hive_enter_network_namespace(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int result = setns(fd, CLONE_NEWNET);
    int error = errno;
    close(fd);
    return result == 0 ? 0 : -error;
}

int hive_current_network_namespace(void) {
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int hive_return_to_network_namespace(int fd) {
    int result = setns(fd, CLONE_NEWNET);
    int error = errno;
    close(fd);
    return result == 0 ? 0 : -error;
}

int hive_eventfd_open(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int hive_eventfd_signal(int fd) {
    uint64_t one = 1;
    return write(fd, &one, sizeof one) == sizeof one ? 0 : -errno;
}

int hive_eventfd_drain(int fd) {
    uint64_t value;
    return read(fd, &value, sizeof value) == sizeof value ? 0 : -errno;
}

int hive_poll_input(const int *fds, uint8_t *ready, int count, int timeout_ms) {
    if (count <= 0) return 0;
    // On the stack: one entry per socket, a few thousand at most.
    struct pollfd polled[count];
    for (int i = 0; i < count; i++) {
        polled[i].fd = fds[i];
        polled[i].events = POLLIN;
        polled[i].revents = 0;
    }
    int result = poll(polled, (nfds_t)count, timeout_ms);
    if (result < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < count; i++) ready[i] = (polled[i].revents & (POLLIN | POLLERR | POLLHUP)) ? 1 : 0;
    return result;
}

int hive_set_thread_nice(int nice) {
    // setpriority on a thread id sets that thread's nice value alone (Linux).
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) == 0 ? 0 : -errno;
}

/* The kernel's floor for relaying RTP on this machine's loopback, without any
 * relay: CPU time per UDP send (unconnected, connected, and batched with sendmmsg)
 * of a 172-byte RTP-sized datagram into a socket on 127.0.0.1, and per receive.
 * On loopback the sender's system call also runs the receiving side (IP and UDP
 * input, queueing onto the destination socket), so a relay that receives one packet
 * and sends one pays at least one receive plus one send from this table.
 * Built and run by benches/loopback-floor.sh. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { PACKETS = 4000, ROUNDS = 50, BATCH = 32, SIZE = 172 };

/* This thread's CPU time in seconds. */
static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Receives every queued datagram; the CPU time it took is added to *spent. */
static int drain(int s, double *spent) {
    char b[2048];
    int n = 0;
    double t = cpu();
    while (recv(s, b, sizeof b, MSG_DONTWAIT) > 0) n++;
    *spent += cpu() - t;
    return n;
}

int main(void) {
    double t = cpu();
    for (int i = 0; i < 1000000; i++) syscall(SYS_getppid);
    printf("empty system call:        %.2f us\n", (cpu() - t));

    int rx = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof to;
    int big = 16 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (bind(rx, (void *)&to, sizeof to) || getsockname(rx, (void *)&to, &len)) {
        perror("bind");
        return 1;
    }
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    char packet[SIZE];
    memset(packet, 0xff, sizeof packet);

    double send_unconnected = 0, send_connected = 0, send_batched = 0, receive = 0;
    long sent = 0, received = 0;
    struct mmsghdr batch[BATCH];
    struct iovec iov = {.iov_base = packet, .iov_len = sizeof packet};
    memset(batch, 0, sizeof batch);
    for (int i = 0; i < BATCH; i++) {
        batch[i].msg_hdr.msg_iov = &iov;
        batch[i].msg_hdr.msg_iovlen = 1;
    }
    for (int round = 0; round < ROUNDS; round++) {
        /* Each burst fits the receive buffer, then is drained, so nothing is dropped. */
        t = cpu();
        for (int i = 0; i < PACKETS; i++)
            sent += sendto(tx, packet, sizeof packet, 0, (void *)&to, sizeof to) > 0;
        send_unconnected += cpu() - t;
        received += drain(rx, &receive);

        connect(tx, (void *)&to, sizeof to);
        t = cpu();
        for (int i = 0; i < PACKETS; i++) sent += send(tx, packet, sizeof packet, 0) > 0;
        send_connected += cpu() - t;
        received += drain(rx, &receive);

        t = cpu();
        for (int i = 0; i < PACKETS; i += BATCH) {
            int n = sendmmsg(tx, batch, BATCH, 0);
            sent += n > 0 ? n : 0;
        }
        send_batched += cpu() - t;
        received += drain(rx, &receive);

        struct sockaddr unspec = {.sa_family = AF_UNSPEC};
        connect(tx, &unspec, sizeof unspec);
    }
    double per = 1e6 / ((double)PACKETS * ROUNDS);
    printf("sendto (unconnected):     %.2f us per packet\n", send_unconnected * per);
    printf("send (connected):         %.2f us per packet\n", send_connected * per);
    printf("sendmmsg, %d at a time:   %.2f us per packet\n", BATCH, send_batched * per);
    printf("recv:                     %.2f us per packet\n", receive * per / 3);
    printf("sent=%ld received=%ld\n", sent, received);
    return sent == received ? 0 : 1;
}

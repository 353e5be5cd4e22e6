/* The task's user-space test: open /dev/myhello twice and read back the string open() wrote into its
 * vmalloc'ed buffer. Exit 0 when both reads return it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WANT "1111111111111111111122222222\n"

int main(void)
{
    for (int i = 0; i < 2; i++) {
        char buf[128] = "";
        int fd = open("/dev/myhello", O_RDONLY);
        if (fd < 0) {
            perror("myhello-test: open /dev/myhello");
            return 1;
        }
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n != (ssize_t)strlen(WANT) || memcmp(buf, WANT, strlen(WANT)) != 0) {
            printf("myhello-test: read %zd bytes \"%s\", want \"%s\"\n", n, n > 0 ? buf : "", WANT);
            return 1;
        }
    }
    printf("myhello-test: ok\n");
    return 0;
}

/* The example project deploy/local/up.sh builds: a small C program that says what it was built from. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *greeting = getenv("GREETING");
    printf("%s from a C program built by Conveyor\n", greeting ? greeting : "hello");
    for (int i = 1; i < argc; i++) printf("argument %d: %s\n", i, argv[i]);
    return 0;
}

/* A stand-in compiler for local mode's tests on Windows (tests/local_mode_windows.rs),
   where the Unix tests' `sh -c SCRIPT` stand-ins cannot run. local mode runs it as it
   runs clang: `common.args + jobs[i].args`, with its `-o X` (or `-oX`) pointed at
   staging. It reads its arguments in order and does what each says:

     -o FILE, -oFILE    the output: created (emptied) there and then
     --write TEXT       appends TEXT to the output
     --name             appends the output's own path (where it was pointed) to it
     --copy FILE        appends FILE's bytes to the output
     --env NAME         appends "NAME=value\n" (the environment variable) to the output
     --beside NAME      writes NAME in the output's directory (a file no one declared)
     --tmp-file         writes a file in %TMP%
     --print TEXT       prints the line TEXT on stdout
     --lines N TAG      prints N lines "TAG line I" on stdout and "TAG err I" on stderr,
                        each in three writes, so that lines of jobs run at once could mix
     --mark FILE        creates FILE (evidence that it got this far)
     --wait-for FILE    waits until FILE exists (at most 20 s, else exits 5)
     --sleep MS         sleeps MS milliseconds
     --spawn N ARGS     starts itself with the next N arguments, without waiting for
                        it, and goes on after them
     --exit N           exits with status N

   Built by tools/setup-windows.sh with x86_64-w64-mingw32-gcc. */
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *output;

static void fail(const char *what, const char *name) {
    fprintf(stderr, "stand-in-compiler: %s %s (error %lu)\n", what, name, GetLastError());
    exit(4);
}

static void append(const char *bytes, size_t len) {
    FILE *f;
    if (!output) fail("no -o before writing to the output", "");
    f = fopen(output, "ab");
    if (!f || fwrite(bytes, 1, len, f) != len || fclose(f)) fail("cannot write", output);
}

static void create(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) fail("cannot write", path);
}

static void piece(FILE *to, const char *text) {
    fputs(text, to);
    fflush(to);
}

/* Starts this program again with argv[from..from+n], quoted as the C runtime reads them
   back (none of the tests' arguments hold quotes or backslashes before quotes). */
static void spawn(char **argv, int from, int n) {
    char self[MAX_PATH], line[8192];
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    int i;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!GetModuleFileNameA(NULL, self, sizeof self)) fail("cannot find itself", "");
    snprintf(line, sizeof line, "\"%s\"", self);
    for (i = from; i < from + n; i++) {
        strncat(line, " \"", sizeof line - strlen(line) - 1);
        strncat(line, argv[i], sizeof line - strlen(line) - 1);
        strncat(line, "\"", sizeof line - strlen(line) - 1);
    }
    if (!CreateProcessA(self, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
        fail("cannot start", self);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
}

int main(int argc, char **argv) {
    int i;
    /* Lines end in \n alone, as clang's do. */
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--spawn")) {
            int n = value ? atoi(value) : -1;
            if (n < 0 || i + 1 + n >= argc) fail("--spawn needs a count of arguments", "");
            spawn(argv, i + 2, n);
            i += 1 + n;
            continue;
        }
        if (!strncmp(arg, "-o", 2) && arg[2]) {
            output = arg + 2;
            create(output, "");
            continue;
        }
        if (!strcmp(arg, "--name")) {
            if (!output) fail("no -o before", arg);
            append(output, strlen(output));
            continue;
        }
        if (!strcmp(arg, "--tmp-file")) {
            char path[MAX_PATH];
            const char *tmp = getenv("TMP");
            if (!tmp) fail("no TMP", "");
            snprintf(path, sizeof path, "%s\\scratch", tmp);
            create(path, "scratch");
            continue;
        }
        if (!value) {
            fprintf(stderr, "stand-in-compiler: %s needs a value\n", arg);
            return 2;
        }
        i++;
        if (!strcmp(arg, "-o")) {
            output = value;
            create(output, "");
        } else if (!strcmp(arg, "--write")) {
            append(value, strlen(value));
        } else if (!strcmp(arg, "--copy")) {
            char buffer[65536];
            size_t n;
            FILE *f = fopen(value, "rb");
            if (!f) fail("cannot read", value);
            while ((n = fread(buffer, 1, sizeof buffer, f)) > 0) append(buffer, n);
            fclose(f);
        } else if (!strcmp(arg, "--env")) {
            const char *set = getenv(value);
            char line[4096];
            snprintf(line, sizeof line, "%s=%s\n", value, set ? set : "(unset)");
            append(line, strlen(line));
        } else if (!strcmp(arg, "--beside")) {
            char path[MAX_PATH];
            const char *slash;
            if (!output) fail("no -o before", arg);
            slash = strrchr(output, '\\');
            if (!slash || (strrchr(output, '/') && strrchr(output, '/') > slash))
                slash = strrchr(output, '/');
            snprintf(path, sizeof path, "%.*s%s", slash ? (int)(slash - output + 1) : 0,
                     output, value);
            create(path, "beside");
        } else if (!strcmp(arg, "--print")) {
            printf("%s\n", value);
            fflush(stdout);
        } else if (!strcmp(arg, "--lines")) {
            int n = atoi(value), k;
            char number[32];
            if (i + 1 >= argc) fail("--lines needs a tag", "");
            value = argv[++i];
            for (k = 0; k < n; k++) {
                snprintf(number, sizeof number, "%d\n", k);
                piece(stdout, value);
                piece(stdout, " line ");
                piece(stdout, number);
                piece(stderr, value);
                piece(stderr, " err ");
                piece(stderr, number);
            }
        } else if (!strcmp(arg, "--mark")) {
            create(value, "mark");
        } else if (!strcmp(arg, "--wait-for")) {
            int waited = 0;
            while (GetFileAttributesA(value) == INVALID_FILE_ATTRIBUTES) {
                if (waited >= 20000) {
                    fprintf(stderr, "stand-in-compiler: %s never appeared\n", value);
                    return 5;
                }
                Sleep(10);
                waited += 10;
            }
        } else if (!strcmp(arg, "--sleep")) {
            Sleep((DWORD)atol(value));
        } else if (!strcmp(arg, "--exit")) {
            return atoi(value);
        } else {
            fprintf(stderr, "stand-in-compiler: unknown argument %s\n", arg);
            return 2;
        }
    }
    return 0;
}

/*
 * mcp-harness prefix wrapper: the target of CLAUDE_CODE_SHELL_PREFIX.
 *
 * Claude Code execs this with one argument. Anything that is not a Bash tool call (hooks,
 * stdio MCP server launches, the status line) is exec'd straight into bash. A Bash tool call
 * is sent to a resident runner in a tmux pane (see mcp_harness/terminal/), whose output and
 * exit status are relayed unchanged; if no runner can be had before the job is accepted, the
 * command runs as plain bash and the reason goes to <data home>/capture/wrapper.log.
 * Frames: 1 type byte, 4-byte big-endian length, payload (mcp_harness/terminal/protocol.py).
 * Written in C because it runs for every command: start-up must cost well under a millisecond.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef HARNESS_PYTHON
#define HARNESS_PYTHON "python3"
#endif
#define MAX_PANES 64

extern char **environ;
static int runner_fd = -1;

static void plain(const char *shell, const char *cmd) {
    execl(shell, shell, "-c", cmd, (char *)NULL);
    execl("/bin/bash", "/bin/bash", "-c", cmd, (char *)NULL);
    _exit(127);
}

static void note(const char *fmt, ...) {
    char dir[4096], path[4200];
    const char *home = getenv("MCP_HARNESS_HOME"), *xdg = getenv("XDG_DATA_HOME");
    if (home && *home) snprintf(dir, sizeof dir, "%s/capture", home);
    else if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/mcp-harness/capture", xdg);
    else snprintf(dir, sizeof dir, "%s/.local/share/mcp-harness/capture", getenv("HOME") ? getenv("HOME") : "/tmp");
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(dir, 0700); *p = '/'; }
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/wrapper.log", dir);
    FILE *log = fopen(path, "a");
    if (!log) return;
    char stamp[64];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(log, "%s prefix: ", stamp);
    va_list args;
    va_start(args, fmt);
    vfprintf(log, fmt, args);
    va_end(args);
    fputs(" (the command ran as plain bash, unrecorded)\n", log);
    fclose(log);
}

static int write_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static int send_frame(int fd, char kind, const char *data, size_t size) {
    unsigned char head[5] = {(unsigned char)kind, (unsigned char)(size >> 24),
                             (unsigned char)(size >> 16), (unsigned char)(size >> 8),
                             (unsigned char)size};
    if (write_all(fd, (const char *)head, 5) < 0) return -1;
    return size ? write_all(fd, data, size) : 0;
}

static void forward_signal(int signum) {
    char digits[8];
    int n = snprintf(digits, sizeof digits, "%d", signum);
    unsigned char head[5] = {'K', 0, 0, 0, (unsigned char)n};
    if (runner_fd >= 0) {
        send(runner_fd, head, 5, MSG_NOSIGNAL);
        send(runner_fd, digits, (size_t)n, MSG_NOSIGNAL);
    }
}

/* Append s to a growing buffer as a JSON string body (bytes >= 0x80 pass through raw). */
static void json_string(char **buf, size_t *len, size_t *cap, const char *s) {
    for (; *s; s++) {
        if (*len + 8 > *cap) { *cap = *cap * 2 + 64; *buf = realloc(*buf, *cap); }
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { (*buf)[(*len)++] = '\\'; (*buf)[(*len)++] = (char)c; }
        else if (c < 0x20) *len += (size_t)sprintf(*buf + *len, "\\u%04x", c);
        else (*buf)[(*len)++] = (char)c;
    }
}

static void append(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) { *cap = (*len + n) * 2 + 64; *buf = realloc(*buf, *cap); }
    memcpy(*buf + *len, s, n);
    *len += n;
}

static int connect_runner(const char *dir) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s/sock", dir) >= (int)sizeof addr.sun_path)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { close(fd); return -1; }
    return fd;
}

static int spawn_runner(const char *dir) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0); dup2(null, 1); dup2(null, 2);
        execl(HARNESS_PYTHON, HARNESS_PYTHON, "-I", "-m", "mcp_harness.terminal.pool", "spawn",
              dir, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Claim a free pane (flock held for our lifetime) and return a socket to its runner. */
static int claim(const char *root, const char **why) {
    char pool[4200], dir[4300], lock[4400];
    snprintf(pool, sizeof pool, "%s/pool", root);
    if (mkdir(root, 0700) < 0 && errno != EEXIST) { *why = "cannot create the runtime dir"; return -1; }
    if (mkdir(pool, 0700) < 0 && errno != EEXIST) { *why = "cannot create the pool dir"; return -1; }
    for (int i = 0; i < MAX_PANES; i++) {
        snprintf(dir, sizeof dir, "%s/%d", pool, i);
        int fresh = mkdir(dir, 0700) == 0;
        if (!fresh && errno != EEXIST) { *why = "cannot create a pane dir"; return -1; }
        snprintf(lock, sizeof lock, "%s/lock", dir);
        int lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd < 0) continue;
        if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) { close(lock_fd); continue; }
        int fd = fresh ? -1 : connect_runner(dir);
        if (fd < 0) {
            if (spawn_runner(dir) < 0) { close(lock_fd); *why = "could not start a runner (is tmux installed?)"; return -1; }
            fd = connect_runner(dir);
        }
        if (fd < 0) { close(lock_fd); *why = "runner does not accept connections"; return -1; }
        return fd; /* lock_fd stays open until we exit */
    }
    *why = "every pane is busy";
    return -1;
}

static const char *choose_shell(void) {
    const char *shell = getenv("SHELL");
    if (shell && access(shell, X_OK) == 0) {
        const char *base = strrchr(shell, '/');
        base = base ? base + 1 : shell;
        if (strcmp(base, "bash") == 0 || strcmp(base, "zsh") == 0) return shell;
    }
    return "/bin/bash";
}

static int json_int(const char *json, const char *key, int *out) {
    const char *at = strstr(json, key);
    if (!at) return 0;
    at += strlen(key);
    while (*at == ' ' || *at == ':') at++;
    if (strncmp(at, "null", 4) == 0) return 0;
    *out = atoi(at);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) execl("/bin/bash", "/bin/bash", (char *)NULL);
    size_t total = 0;
    for (int i = 1; i < argc; i++) total += strlen(argv[i]) + 1;
    char *cmd = malloc(total + 1);
    cmd[0] = 0;
    for (int i = 1; i < argc; i++) { if (i > 1) strcat(cmd, " "); strcat(cmd, argv[i]); }

    if (!strstr(cmd, "pwd -P >| ")) execl("/bin/bash", "/bin/bash", "-c", cmd, (char *)NULL);
    const char *shell = choose_shell();
    const char *off = getenv("MCP_HARNESS_CAPTURE");
    if (off && strcmp(off, "0") == 0) plain(shell, cmd);

    char root[4096];
    const char *rt = getenv("MCP_HARNESS_RUNTIME_DIR");
    if (rt && *rt) snprintf(root, sizeof root, "%s", rt);
    else snprintf(root, sizeof root, "/tmp/mcp-harness-%u", (unsigned)getuid());
    const char *why = "";
    signal(SIGPIPE, SIG_IGN);
    runner_fd = claim(root, &why);
    if (runner_fd < 0) { note("%s", why); plain(shell, cmd); }

    struct stat out_st, err_st;
    int merged = fstat(1, &out_st) == 0 && fstat(2, &err_st) == 0 &&
                 out_st.st_dev == err_st.st_dev && out_st.st_ino == err_st.st_ino;
    char cwd[8192];
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
    size_t len = 0, cap = total + 256;
    char *job = malloc(cap);
    append(&job, &len, &cap, "{\"cmd\": \"");
    json_string(&job, &len, &cap, cmd);
    append(&job, &len, &cap, "\", \"cwd\": \"");
    json_string(&job, &len, &cap, cwd);
    char tail[96];
    snprintf(tail, sizeof tail, "\", \"merged\": %s, \"record\": true, \"pid\": %d}",
             merged ? "true" : "false", (int)getpid());
    append(&job, &len, &cap, tail);
    size_t env_len = 0;
    for (char **e = environ; *e; e++) env_len += strlen(*e) + 1;
    char *env = malloc(env_len + 1), *at = env;
    for (char **e = environ; *e; e++) { size_t n = strlen(*e); memcpy(at, *e, n); at += n; *at++ = 0; }
    if (env_len) env_len--; /* NUL separates, it does not terminate */
    if (send_frame(runner_fd, 'J', job, len) < 0 || send_frame(runner_fd, 'V', env, env_len) < 0) {
        note("runner closed before the job was sent");
        plain(shell, cmd);
    }

    struct sigaction sa = {.sa_handler = forward_signal};
    sigemptyset(&sa.sa_mask);
    int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaction(forwarded[i], &sa, NULL);

    int accepted = 0;
    size_t have = 0, size = 1 << 16;
    char *buf = malloc(size);
    for (;;) {
        if (have == size) { size *= 2; buf = realloc(buf, size); }
        ssize_t n = read(runner_fd, buf + have, size - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += (size_t)n;
        size_t pos = 0;
        while (have - pos >= 5) {
            unsigned char *h = (unsigned char *)buf + pos;
            size_t flen = ((size_t)h[1] << 24) | ((size_t)h[2] << 16) | ((size_t)h[3] << 8) | h[4];
            if (have - pos - 5 < flen) {
                if (flen + 5 > size) { size = flen + 5; buf = realloc(buf, size); h = NULL; }
                break;
            }
            char kind = buf[pos];
            char *payload = buf + pos + 5;
            if (kind == 'A') accepted = 1;
            else if (kind == 'O') write_all(1, payload, flen);
            else if (kind == 'E') write_all(2, payload, flen);
            else if (kind == 'X') {
                char *text = strndup(payload, flen);
                int code = 255, sig = 0;
                json_int(text, "\"code\"", &code);
                if (json_int(text, "\"signal\"", &sig) && sig > 0) {
                    signal(sig, SIG_DFL);
                    sigset_t set;
                    sigemptyset(&set);
                    sigaddset(&set, sig);
                    sigprocmask(SIG_UNBLOCK, &set, NULL);
                    kill(getpid(), sig);
                    _exit(128 + sig);
                }
                _exit(code);
            }
            pos += 5 + flen;
        }
        memmove(buf, buf + pos, have - pos);
        have -= pos;
    }
    if (!accepted) {
        note("runner closed the connection before accepting the job");
        plain(shell, cmd);
    }
    static const char lost[] = "mcp-harness: the terminal runner stopped before the command finished\n";
    write_all(2, lost, sizeof lost - 1);
    return 255;
}

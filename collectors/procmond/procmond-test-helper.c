/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A process the procmond tests drive over stdin, one command per line, to
 * change what /proc shows about it:
 *
 *   ping              -> "pong"
 *   name NEW          -> prctl(PR_SET_NAME), "ok"
 *   setuid UID        -> setresuid(UID, UID, UID), "ok" or "error <errno>"
 *   fork              -> forks a `sleep 30` child, prints its pid
 *   exec PATH ARG...  -> "ok", then execv(PATH, ARG...)
 *   exit / EOF        -> exits 0
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <glib.h>

static void reply(const char *format, ...) G_GNUC_PRINTF(1, 2);

static void reply(const char *format, ...)
{
        va_list args;

        va_start(args, format);
        vprintf(format, args);
        va_end(args);
        putchar('\n');
        fflush(stdout);
}

int main(void)
{
        char line[4096];

        while (fgets(line, sizeof(line), stdin)) {
                g_auto(GStrv) words = NULL;

                g_strchomp(line);
                words = g_strsplit(line, " ", -1);
                if (!words[0])
                        continue;
                if (g_str_equal(words[0], "ping")) {
                        reply("pong");
                } else if (g_str_equal(words[0], "name") && words[1]) {
                        prctl(PR_SET_NAME, words[1], 0, 0, 0);
                        reply("ok");
                } else if (g_str_equal(words[0], "setuid") && words[1]) {
                        uid_t uid = (uid_t)strtoul(words[1], NULL, 10);

                        if (setresuid(uid, uid, uid) == 0)
                                reply("ok");
                        else
                                reply("error %d", errno);
                } else if (g_str_equal(words[0], "fork")) {
                        pid_t pid = fork();

                        if (pid == 0) {
                                execl("/bin/sleep", "sleep", "30", (char *)NULL);
                                _exit(127);
                        }
                        reply("%d", (int)pid);
                } else if (g_str_equal(words[0], "exec") && words[1] && words[2]) {
                        reply("ok");
                        execv(words[1], words + 2);
                        reply("error %d", errno);
                } else if (g_str_equal(words[0], "exit")) {
                        return 0;
                } else {
                        reply("unknown command");
                }
        }
        return 0;
}

# sdt sandbox preamble: runs first in the sandboxed interpreter, then executes the candidate program.
#
# It reads its configuration (one JSON line) from stdin, so nothing secret shows up in argv, then:
#   1. reads the candidate source while it may still read anything;
#   2. sets the OS resource limits (address space, CPU seconds, file size, processes, open files, core);
#   3. drops to an unprivileged uid/gid when started as root (the OS then refuses writes to files it does
#      not own, signals to other users' processes, and counts RLIMIT_NPROC against that uid);
#   4. installs an audit hook (PEP 578) that refuses sockets, signals to other processes, process spawns,
#      ctypes, writes outside the work directory and reads outside it and the interpreter's own libraries;
#   5. executes the candidate as __main__ and, only if it returns normally, prints a per-run nonce on
#      stdout so that an early os._exit(0) cannot pass for success.
# Every refusal is also written to stderr as a marker line, so the harness sees it even when the
# candidate catches the exception.
import builtins
import json
import os
import resource
import signal
import sys
import traceback

_VIOLATION = '__SDT_VIOLATION__'


def _mount_tmpfs(work, size, uid):
    # Still root, in a private mount namespace: a size-limited tmpfs over the work directory is the
    # candidate's disk quota, and it vanishes with the namespace. The program was read before this.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    owner = f',uid={uid},gid={uid}' if uid is not None else ''
    opts = f'size={size},nr_inodes=4096,mode=0700{owner}'.encode()
    if libc.mount(b'tmpfs', work.encode(), b'tmpfs', 0, opts) != 0:
        err = ctypes.get_errno()
        os.write(2, f'\n__SDT_VIOLATION__ sandbox cannot mount tmpfs: {os.strerror(err)}\n'.encode())
        os._exit(3)


def _main():
    cfg = json.loads(sys.stdin.readline())
    work = os.path.realpath(cfg['dir'])
    nonce = cfg['nonce']
    with open(os.path.join(work, cfg['program']), encoding='utf-8') as f:
        source = f.read()
    try:
        code = compile(source, cfg['program'], 'exec')
    except SyntaxError:
        traceback.print_exc(limit=0)
        sys.exit(1)

    lim = cfg['limits']
    if cfg.get('tmpfs'):
        _mount_tmpfs(work, lim['diskBytes'], cfg.get('uid'))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (lim['memoryBytes'], lim['memoryBytes']))
    resource.setrlimit(resource.RLIMIT_CPU, (lim['cpuSeconds'], lim['cpuSeconds'] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim['fileSizeBytes'], lim['fileSizeBytes']))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim['openFiles'], lim['openFiles']))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim['processes'], lim['processes']))

    # The soft CPU limit raises SIGXCPU; say so before dying, since the process may be PID 1 of a
    # namespace, whose death by signal its parent does not report faithfully.
    def on_cpu_limit(signum, frame):
        os.write(2, f'\n{_VIOLATION} timeout CPU-time limit of {lim["cpuSeconds"]} s reached\n'.encode())
        os._exit(124)

    signal.signal(signal.SIGXCPU, on_cpu_limit)

    # A backstop for a harness that died without killing us: the wall-clock limit plus a margin. (As PID 1
    # of a namespace the default action of SIGALRM would be ignored, hence the handler.)
    def on_alarm(signum, frame):
        os.write(2, f'\n{_VIOLATION} timeout wall-clock backstop reached\n'.encode())
        os._exit(124)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(lim['timeoutMs'] / 1000) + 2)

    uid = cfg.get('uid')
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.chdir(work)
    os.umask(0o077)

    # The interpreter's own library directories stay readable so that imports keep working.
    lib_dirs = [p for p in sys.path if p and os.path.isdir(p)]
    read_roots = [work] + [os.path.realpath(p) for p in lib_dirs + cfg.get('readRoots', [])]
    read_files = {'/dev/null', '/dev/zero', '/dev/urandom', '/dev/random', '/etc/localtime'}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    my_pid = os.getpid()

    def inside(path, roots):
        if isinstance(path, int):
            return True  # an already-open descriptor: its opening was checked
        p = os.path.realpath(os.fsdecode(path))
        return any(p == r or p.startswith(r + os.sep) for r in roots)

    def refuse(kind, detail):
        try:
            os.write(2, f'\n{_VIOLATION} {kind} {detail}\n'.encode('utf-8', 'replace'))
        except OSError:
            pass
        raise PermissionError(f'sdt sandbox: {kind} refused: {detail}')

    path_events = {
        'os.remove', 'os.rename', 'os.rmdir', 'os.mkdir', 'os.chmod', 'os.chown', 'os.link',
        'os.symlink', 'os.truncate', 'os.utime', 'shutil.rmtree', 'shutil.move', 'shutil.copyfile',
        'os.chdir', 'os.chroot',
    }

    def hook(event, args):
        if event == 'open':
            path, mode, flags = args
            if path is None or isinstance(path, int):
                return
            writing = (mode is not None and any(c in mode for c in 'wax+')) or bool(
                (flags or 0) & write_flags
            )
            name = os.fsdecode(path)
            if writing:
                if not inside(path, [work]):
                    refuse('fs', f'write outside the work directory: {name}')
            elif not (os.path.realpath(name) in read_files or inside(path, read_roots)):
                refuse('fs', f'read outside the work directory: {name}')
        elif event in path_events:
            for a in args:
                if isinstance(a, (str, bytes, os.PathLike)) and not inside(a, [work]):
                    refuse('fs', f'{event} outside the work directory: {os.fsdecode(a)}')
        elif event in ('os.listdir', 'os.scandir'):
            path = args[0]
            if path is not None and not isinstance(path, int) and not inside(path, read_roots):
                refuse('fs', f'listing outside the work directory: {os.fsdecode(path)}')
        elif event.startswith('socket.'):
            refuse('network', f'{event}')
        elif event in ('os.kill', 'os.killpg', 'signal.pthread_kill'):
            if event != 'os.kill' or args[0] != my_pid:
                refuse('process', f'{event}{args!r}')
        elif event in (
            'subprocess.Popen', 'os.system', 'os.exec', 'os.posix_spawn', 'os.spawn', 'os.startfile',
            'pty.spawn', 'os.forkpty',
        ):
            refuse('process', f'{event}')
        elif event == 'os.fork' and cfg.get('blockFork'):
            # Root without a uid drop: RLIMIT_NPROC is not enforced for root, so forking is refused.
            refuse('process-limit', 'fork refused (the OS cannot bound processes here)')
        elif event.startswith('ctypes.') or event in ('_posixsubprocess.fork_exec',):
            refuse('process', f'{event}')

    if cfg.get('auditHook', True):
        sys.addaudithook(hook)
    sys.argv = [cfg['program']]
    sys.stdin = open(os.devnull, encoding='utf-8')
    scope = {'__name__': '__main__', '__builtins__': builtins, '__file__': cfg['program']}
    try:
        exec(code, scope)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    try:
        sys.stdout.flush()
    finally:
        os.write(1, f'\n{nonce}\n'.encode())


_main()

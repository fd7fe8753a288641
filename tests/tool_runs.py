"""What a command-line tool run in the test process printed, and the one-line-error check
the CLI tests of every application share."""

import dataclasses


@dataclasses.dataclass
class Result:
    """What a tool did: its exit status, stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str

    def one_line_error(self, *fragments, code=2, prefix="error: "):
        """Asserts the exit status and one line `error: ...` on stderr holding every fragment.

        Returns:
            The line.
        """
        assert self.returncode == code, (self.returncode, self.stderr[-3000:])
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(prefix), self.stderr[-3000:]
        for fragment in fragments:
            assert fragment in lines[0], lines[0]
        return lines[0]

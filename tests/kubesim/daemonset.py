"""placeholder"""


class DaemonSetController:
    def __init__(self, store: object) -> None:
        self._store = store

    async def run(self) -> None:
        return

from taskctl import task


@task()
def add(a, b=0):
    return a + b


@task()
def boom(message="boom"):
    raise ValueError(message)


@task()
def echo(value=None):
    return value

from pybuild.cli import command

command()

from jkctl.cli.main import main

main()

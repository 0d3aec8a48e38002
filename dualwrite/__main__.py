from dualwrite.cli.main import main

main()
